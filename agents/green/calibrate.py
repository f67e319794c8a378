"""`simcity calibrate --device cuda`: measured joules per policy decision and perception call.

(``--device cpu`` is `agents.green.calibrate_cpu`.) On an NVIDIA GPU, NVML's board energy
counter (`simcity.compute.measure.NvmlEnergyMeter`) is read around back-to-back calls of two
models:

- the allocation policy (a checkpoint, or a fresh default `AttentionPolicy`) deciding on
  the scenario's city, B = 1, as it plays: in float32 (a heuristic prior, where the config
  has one, is computed in NumPy on the CPU, round trip included);
- a perception model at the base profile's precision: a YOLO-like convolutional backbone
  (`perception_model`: stride-2 Conv-BatchNorm-SiLU stages) on a batch of camera frames,
  the stand-in for what one monitoring unit runs (``analytics_flop_per_unit_min``).

FLOPs of both are counted with `torch.utils.flop_counter` on the same inputs. The busy run of
the perception model fits the profile (`simcity.compute.measure.calibrate_profile` with its FLOPs,
joules and seconds: utilisation and max power become the measured ones), since analytics
dominate the bill; the policy's joules per decision are reported beside it and its time per
decision becomes the profile's ``call_overhead_s``. The profile (provenance "calibrated")
is written (with the other profiles already in the file) to a devices TOML that scenarios
use through ``[compute] device = NAME, devices_file = PATH``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from agents.policies.attention import AttentionConfig, AttentionPolicy, count_flops_per_decision
from agents.policies.checkpoint import city_neighbours
from agents.policies.compressed import is_int8, load_model
from simcity.compute.measure import MeasuredEnergy, NvmlEnergyMeter, calibrate_profile
from simcity.config.devices import DeviceProfile, device_profile, load_devices
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.records.files import write_atomic

_BASES: tuple[tuple[str, str], ...] = (
    ("H100", "h100_sxm"),
    ("H200", "h100_sxm"),
    ("A100", "a100_sxm_80gb"),
    ("L4", "l4"),
    ("T4", "t4"),
    ("Orin", "jetson_agx_orin_64gb"),
)
"""NVML name fragment -> shipped profile to start from (H200: the H100's compute and 700 W)."""
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Calibration:
    gpu_name: str  # as NVML names it
    base: str  # the shipped profile it started from
    profile: DeviceProfile  # fitted to the perception run
    policy: MeasuredEnergy
    policy_flop: int  # per decision
    perception: MeasuredEnergy
    perception_flop: int  # per call (a batch of frames)


def perception_model(width: int = 32, stages: int = 5) -> nn.Sequential:
    """A YOLO-like backbone: stride-2 Conv-BN-SiLU stages doubling the channels."""
    layers: list[nn.Module] = []
    channels = 3
    for k in range(stages):
        out = width * 2**k
        layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False)]
        layers += [nn.BatchNorm2d(out), nn.SiLU()]
        layers += [nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.SiLU()]
        channels = out
    return nn.Sequential(*layers).eval()


def perception_workload(batch: int, frame_px: int) -> tuple[nn.Sequential, torch.Tensor, int]:
    """The backbone, a seeded batch of frames (B, 3, P, P) on the CPU, and the FLOPs of
    one call on them (counted by `FlopCounterMode`; they do not depend on the device)."""
    frames = torch.rand((batch, 3, frame_px, frame_px), generator=torch.Generator().manual_seed(0))
    perception = perception_model()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        perception(frames)
    return perception, frames, int(counter.get_total_flops())


def base_for(gpu_name: str) -> str:
    """The shipped profile for a GPU NVML names, e.g. "NVIDIA H100 80GB HBM3" -> h100_sxm."""
    for fragment, base in _BASES:
        if re.search(rf"\b{fragment}\b", gpu_name, flags=re.IGNORECASE):
            return base
    raise SimcityError(
        f"no shipped profile for {gpu_name!r}",
        field="--base",
        expected="one of " + ", ".join(sorted(load_devices())),
    )


def torch_device(device: str) -> torch.device:
    """``device`` as a torch device; a CUDA one must exist here."""
    expected = "cpu, cuda or cuda:N"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise SimcityError(f"is {device!r}", field="--device", expected=expected) from None
    if parsed.type not in ("cpu", "cuda"):
        raise SimcityError(f"is {device!r}", field="--device", expected=expected)
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise SimcityError(
            "no CUDA GPU on this machine (torch.cuda.is_available() is False)",
            field="--device",
            expected="a machine with an NVIDIA GPU and CUDA torch",
        )
    return parsed


def calibrate_device(
    *,
    device: str = "cuda",
    env: CityEnv,
    checkpoint: Path | None = None,
    base: str | None = None,
    name: str | None = None,
    frame_px: int = 640,
    batch: int = 8,
    seconds: float = 2.0,
    nvml: Any = None,
    clock: Callable[[], float] = time.perf_counter,
    synchronize: Callable[[str], None] | None = None,
) -> Calibration:
    """Measure both models on ``device`` and fit a profile; see the module doc.

    ``synchronize(which)`` runs after every call ("policy" or "perception"): by default
    ``torch.cuda.synchronize`` on CUDA, so the energy lands inside the measurement. ``nvml``
    and ``clock`` are for tests (a stand-in NVML and its clock).
    """
    target = torch_device(device)
    index = (target.index or 0) if target.type == "cuda" else 0
    ok, why = NvmlEnergyMeter.available(index, nvml=nvml)
    if not ok:
        raise SimcityError(why, field="nvml", expected="NVML with an energy counter")
    meter = NvmlEnergyMeter(index, nvml=nvml, clock=clock)
    gpu_name = why.rsplit(" (device", 1)[0]
    base_name = base if base is not None else base_for(gpu_name)
    base_profile = device_profile(base_name)
    dtype = _DTYPES.get(base_profile.precision, torch.float32)
    if synchronize is None:
        synchronize = (
            (lambda _: torch.cuda.synchronize(target))
            if target.type == "cuda"
            else (lambda _: None)
        )

    # The policy, on the scenario's city, one decision at a time.
    if checkpoint is not None:
        policy, _ = load_model(checkpoint)
        if is_int8(policy):
            raise SimcityError("is int8 (CPU only)", file=checkpoint, expected="a float policy")
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            policy = AttentionPolicy(AttentionConfig()).eval()
    neighbours, distances = city_neighbours(env.city, policy.config.num_neighbours)
    policy_flop = count_flops_per_decision(policy, env.city.num_nodes, neighbours, distances)
    obs, _ = env.reset(seed=0)
    policy = policy.to(device=target)
    inputs = (
        torch.as_tensor(obs["nodes"]).unsqueeze(0).to(target),
        torch.as_tensor(obs["globals"]).unsqueeze(0).to(target),
        neighbours.to(target),
        distances.to(target),
    )

    def decide() -> None:
        with torch.no_grad():
            policy(*inputs)
        synchronize("policy")

    # The perception model on a batch of frames.
    perception, frames, perception_flop = perception_workload(batch, frame_px)
    frames = frames.to(target, dtype)
    perception = perception.to(device=target, dtype=dtype)

    def perceive() -> None:
        with torch.no_grad():
            perception(frames)
        synchronize("perception")

    measured_policy = _measure(meter, decide, seconds, clock)
    measured_perception = _measure(meter, perceive, seconds, clock)
    n = measured_perception.num_calls
    fitted = calibrate_profile(
        base_profile,
        (measured_perception.joules_per_call * n, perception_flop * n),
        seconds=measured_perception.seconds_per_call * n,
        name=name or f"{base_name}_measured",
    )
    note = (
        f" Measured with NVML on {gpu_name}: {measured_perception.joules_per_call:.4g} J per "
        f"perception call ({perception_flop:.4g} FLOP: {batch} frames of {frame_px} px), "
        f"{measured_policy.joules_per_call:.4g} J per policy decision ({policy_flop:.4g} FLOP, "
        f"{env.city.num_nodes} nodes; its measured time per call is call_overhead_s), "
        "whole-board energy, idle draw included."
    )
    profile = fitted.model_copy(
        update={
            "source": fitted.source + note,
            "provenance": "calibrated",
            "call_overhead_s": measured_policy.seconds_per_call,
        }
    )
    return Calibration(
        gpu_name,
        base_name,
        profile,
        measured_policy,
        policy_flop,
        measured_perception,
        perception_flop,
    )


def _measure(
    meter: NvmlEnergyMeter, fn: Callable[[], None], seconds: float, clock: Callable[[], float]
) -> MeasuredEnergy:
    """Enough back-to-back calls of ``fn`` to last about ``seconds`` (at least 10)."""
    for _ in range(3):  # warm-up: kernels chosen, caches filled
        fn()
    start = clock()
    for _ in range(3):
        fn()
    per_call = (clock() - start) / 3
    repeats = max(10, math.ceil(seconds / per_call)) if per_call > 0 else 10
    return meter.measure(fn, repeats=min(repeats, 1_000_000), warmup=1)


def devices_toml(profiles: dict[str, DeviceProfile]) -> str:
    """Profiles as a devices file `simcity.config.devices.load_devices` reads back unchanged."""
    lines = ["# Device profiles written by `simcity calibrate` (see simcity/data/devices.toml)."]
    for key, profile in profiles.items():
        table = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
        lines += ["", f"[{table}]"]
        for field, value in profile.model_dump().items():
            if field == "name" or value is None:
                continue
            if isinstance(value, tuple | list):
                value = list(value)  # TOML arrays are JSON arrays of strings
            text = (
                json.dumps(value, ensure_ascii=False)
                if isinstance(value, str | list)
                else repr(value)
            )
            lines.append(f"{field} = {text}")
    return "\n".join(lines) + "\n"


def write_profile(path: Path, profile: DeviceProfile) -> dict[str, DeviceProfile]:
    """Add (or replace) ``profile`` in the devices file at ``path``, atomically."""
    profiles = load_devices(path) if path.exists() else {}
    profiles[profile.name] = profile
    write_atomic(path, devices_toml(profiles))
    return profiles
