"""`simcity compress`: make a cheaper policy and measure it against the original.

For the original and the compressed policy alike: parameters and stored bytes, FLOPs and
int8 ops per decision (`agents.policies.compressed.policy_cost`), the FLOP-equivalent the env
bills on the scenario's device, the measured CPU latency per decision (median of timed `act`
calls after warm-up, one torch thread, `time.perf_counter`), the energy and carbon of one
decision where the policy runs, and the service KPIs of days played in the env (the policy's
real cost billed). Those days are validation days (`agents.training.seeds.validation_seeds`):
the report is what one chooses a variant by (keep it or not; `bench/compress.py` picks the
best), so it never reads a test day.

Energy per decision is time x power on a device profile (`DeviceProfile.call_energy_j`), times
the scenario's PUE; carbon is that times the scenario's mean data-centre grid intensity. The
idle draw is left out: the device is on anyway.

- ``energy_per_decision``, where the policy runs: an int8 policy (torch's dynamic
  quantisation runs on the CPU only) on the CPU profile (``--cpu-device``) at its measured
  latency, never at a GPU's int8 rate; a float policy on the scenario's policy device, its
  time modelled (`DeviceProfile.call_seconds`: the call overhead floor, or the work at the
  achievable rate).
- ``cpu_energy_per_decision``: every policy on the CPU profile at its measured latency.

Each says its provenance: a measured latency on a profile's power is "calibrated" ("measured"
on a profile whose powers RAPL read, `simcity calibrate --device cpu`); a modelled time is
what the profile is (datasheet, calibrated or measured).

Cost. `compress_checkpoint` runs on one torch thread (so do `agents.green.distill` and the
evaluation days here). On torch's default of a thread per core, kernels such as layer norm
(split row by row, even over the ``tiny`` city's 16 nodes), GELU and the backward pass become
two-thread OpenMP regions, each waiting for a second core that a shared machine often has not
got: most of a 2 to 20 minute run went there (issue 22). On one thread the time goes
to the fine-tune's Adam steps (prune and distill: 40 epochs of 48 minibatches), the teacher's
16 days, and the 2 x ``episodes`` evaluation days, in that order.
``progress(stage, done, total)``, where given, is told after every teacher day, fit epoch and
evaluation day (stages "teacher days", "fit epochs", "evaluate NAME").
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np

from agents.green.calibrate_cpu import median_latency, torch_threads
from agents.green.distill import (
    DistillConfig,
    Progress,
    collect_teacher_data,
    distill,
    fresh_student,
    smaller_config,
)
from agents.policies.attention import AttentionPolicy
from agents.policies.checkpoint import save_checkpoint
from agents.policies.compressed import (
    CPU_DEVICE,
    METHODS,
    CompressedPolicy,
    PrunedShape,
    find_profile,
    is_int8,
    load_model,
    policy_device,
    pruned_shape,
    quantize_int8,
    save_compressed,
)
from agents.policies.compressed import prune as prune_model
from agents.training.evaluate import aggregate, run_episode
from agents.training.seeds import split_seeds, validation_seeds
from simcity.compute.measure import latency_energy
from simcity.config.devices import DeviceProfile
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.records.files import write_atomic

POLICY_NAME = "policy.pt"
REPORT_NAME = "compress.json"


@dataclass(frozen=True)
class CompressOptions:
    """What `compress_checkpoint` does; sizes left None take the defaults in the CLI help."""

    method: str
    episodes: int = 5  # evaluation days (0: no KPIs)
    heads: int | None = None  # prune: heads kept; distill: the student's heads
    mlp_hidden: int | None = None  # prune: MLP hidden units kept
    d_model: int | None = None  # distill: the student's width
    num_layers: int | None = None  # distill: the student's layers
    finetune: bool = True  # prune: distil the pruned model from the original afterwards
    distill: DistillConfig = field(default_factory=DistillConfig)
    latency_runs: int = 50
    cpu_device: str = CPU_DEVICE  # the CPU profile int8 runs on and latencies are billed on

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SimcityError(
                f"unknown method {self.method!r}", field="--method", expected=" | ".join(METHODS)
            )
        if self.episodes < 0 or self.latency_runs < 1:
            raise SimcityError("is negative", field="--episodes", expected=">= 0")


def make_compressed(
    teacher: AttentionPolicy,
    env: CityEnv,
    options: CompressOptions,
    progress: Progress | None = None,
) -> tuple[AttentionPolicy, dict[str, Any]]:
    """The compressed network and what was done, as plain data for the file and report."""
    if options.method == "int8":
        if is_int8(teacher):
            raise SimcityError("is already int8", field="CHECKPOINT", expected="a float policy")
        return quantize_int8(teacher), {}
    if options.method == "prune":
        if is_int8(teacher):
            raise SimcityError("is int8", field="CHECKPOINT", expected="a float policy to prune")
        c = teacher.config
        current = pruned_shape(teacher) or PrunedShape(c.num_heads, c.mlp_ratio * c.d_model)
        shape = PrunedShape(
            options.heads if options.heads is not None else max(1, current.num_heads // 2),
            options.mlp_hidden
            if options.mlp_hidden is not None
            else max(1, current.mlp_hidden // 2),
        )
        model = prune_model(teacher, shape)
        done: dict[str, Any] = {"pruned": dataclasses.asdict(shape)}
        if options.finetune:
            result = distill(teacher, model, env, options.distill, progress=progress)
            done["finetune"] = _distill_facts(options.distill, result.epoch_losses)
        return model, done
    student_config = smaller_config(teacher.config)
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("d_model", options.d_model),
            ("num_heads", options.heads),
            ("num_layers", options.num_layers),
        )
        if value is not None
    }
    try:
        student_config = dataclasses.replace(student_config, **changes)
    except ValueError as err:
        raise SimcityError(str(err), field="--d-model/--heads") from None
    student = fresh_student(student_config, options.distill.seed)
    data = collect_teacher_data(teacher, env, options.distill, progress)
    result = distill(teacher, student, env, options.distill, data, progress)
    return result.model, {
        "student": dataclasses.asdict(student_config),
        "distill": _distill_facts(options.distill, result.epoch_losses),
    }


def _distill_facts(config: DistillConfig, losses: list[float]) -> dict[str, Any]:
    return {**dataclasses.asdict(config), "first_loss": losses[0], "last_loss": losses[-1]}


def save_policy(path: Path, model: AttentionPolicy, method: str, extra: dict[str, Any]) -> Path:
    """Distilled students are ordinary checkpoints; pruned and int8 ones compressed files."""
    if method == "distill":
        return save_checkpoint(
            path,
            model_config=model.config,
            state_dict=model.state_dict(),
            optimizer_state={},
            step=0,
            update=0,
            rng_states={},
            extra=extra,
        )
    return save_compressed(path, model, method=method, extra=extra)


def cpu_latency_s(
    policy: CompressedPolicy,
    obs: dict[str, np.ndarray],
    runs: int,
    clock: Callable[[], float] | None = None,
) -> float:
    """Median wall time of one `act` in seconds, one torch thread, after a warm-up."""
    with torch_threads(1):
        latency = median_latency(
            lambda: policy.act(obs),
            seconds=0.0,
            min_runs=runs,
            warmup=max(3, runs // 10),
            clock=clock or perf_counter,
        )
    return latency.median_s


def energy_on(
    device: DeviceProfile, seconds: float, *, measured: bool, pue: float, intensity: float
) -> dict[str, Any]:
    """One decision lasting ``seconds`` on ``device`` (time measured here, or modelled), at
    the device's call power: joules at the facility (x ``pue``) and gCO2, with provenance."""
    power_w = device.call_busy_power_w
    if measured:
        estimate = latency_energy(
            seconds,
            power_w,
            power_source=f"{device.name}'s call power, {device.provenance}",
            power_measured=device.provenance == "measured",
        )
        provenance, basis = estimate.provenance, estimate.basis
    else:
        provenance = device.provenance
        basis = (
            f"{seconds * 1e3:.4g} ms modelled (call_seconds) x {power_w:.4g} W "
            f"({device.name}, {device.provenance})"
        )
    joules = device.call_energy_j(seconds) * pue
    return {
        "device": device.name,
        "latency": "measured" if measured else "modelled",
        "seconds": seconds,
        "power_w": power_w,
        "joules": joules,
        "gco2": joules / 3.6e6 * intensity,
        "provenance": provenance,
        "basis": basis,
    }


def measure_policy(
    policy: CompressedPolicy,
    env: CityEnv,
    episodes: int,
    latency_runs: int,
    cpu_device: str = CPU_DEVICE,
    split: str = "validation",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Everything the module doc lists, for one policy, as plain data, its days the first
    ``episodes`` of ``split`` ("test" only for a report made after every choice). The
    policy's measured latency is kept in its ``latency_s`` (and the env bills it where it
    can)."""
    obs, _ = env.reset(seed=validation_seeds(1)[0])
    assert env.world is not None
    intensity = float(np.mean(env.world.datacentre_g_per_kwh))
    pue = env.scenario.compute.pue
    latency = cpu_latency_s(policy, obs, latency_runs)
    cpu = find_profile(policy.device or cpu_device, env)
    on_cpu = energy_on(cpu, latency, measured=True, pue=pue, intensity=intensity)
    if policy.device is not None:  # int8: runs on the CPU, at the measured latency
        policy.latency_s = latency
        billed = on_cpu
    else:
        device = policy_device(env)
        seconds = device.call_seconds(policy.cost.flop, policy.cost.int8_op)
        billed = energy_on(device, seconds, measured=False, pue=pue, intensity=intensity)
    facts: dict[str, Any] = {
        "name": policy.name,
        "num_params": policy.cost.num_params,
        "weight_bytes": policy.cost.weight_bytes,
        "flop_per_decision": policy.cost.flop,
        "int8_op_per_decision": policy.cost.int8_op,
        "billed_flop_per_decision": policy.flops_per_decision,
        "billed_device": env.scenario.compute.device,
        "device": billed["device"],
        "cpu_latency_ms": latency * 1e3,
        "energy_per_decision": billed,
        "cpu_energy_per_decision": on_cpu,
        "kpis": {},
    }
    if episodes:
        summaries = []
        with torch_threads(1):
            for done, seed in enumerate(split_seeds(split, episodes), start=1):
                episode = run_episode(env, policy, seed)
                service = sum(i["cost_damage"] + i["cost_estimation"] for i in episode.infos)
                summaries.append({**episode.summary, "service_cost": float(service)})
                if progress is not None:
                    progress(f"evaluate {policy.name}", done, episodes)
        facts["kpis"] = aggregate(summaries)
    return facts


def compress_checkpoint(
    checkpoint: Path,
    env: CityEnv,
    options: CompressOptions,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compress ``checkpoint`` by ``options.method``, save it in ``out_dir`` with a report
    (``compress.json``, atomic), and return the report."""
    with torch_threads(1):
        return _compress(checkpoint, env, options, out_dir, progress)


def _compress(
    checkpoint: Path,
    env: CityEnv,
    options: CompressOptions,
    out_dir: Path,
    progress: Progress | None,
) -> dict[str, Any]:
    teacher, _ = load_model(checkpoint)
    model, done = make_compressed(teacher, env, options, progress)
    extra = {"method": options.method, "source": str(checkpoint), **done}
    policy_path = save_policy(out_dir / POLICY_NAME, model, options.method, extra)
    original, compressed = (
        measure_policy(
            CompressedPolicy(network, env, label, cpu_device=options.cpu_device),
            env,
            options.episodes,
            options.latency_runs,
            options.cpu_device,
            progress=progress,
        )
        for network, label in ((teacher, "original"), (model, options.method))
    )
    report = {
        "checkpoint": str(checkpoint),
        "scenario": env.scenario.name,
        "num_nodes": env.city.num_nodes,
        "method": options.method,
        "policy_file": str(policy_path),
        "split": "validation",
        "seeds": validation_seeds(options.episodes),
        "done": done,
        "original": original,
        "compressed": compressed,
        "ratios": ratios(original, compressed),
    }
    write_atomic(out_dir / REPORT_NAME, json.dumps(report, indent=2) + "\n")
    return report


def ratios(original: dict[str, Any], compressed: dict[str, Any]) -> dict[str, float]:
    """Compressed over original for the headline numbers (service cost: lower is better)."""
    keys = ["num_params", "billed_flop_per_decision", "cpu_latency_ms"]
    out = {key: _ratio(compressed[key], original[key]) for key in keys}
    for key in ("energy_per_decision", "cpu_energy_per_decision"):
        out[key] = _ratio(compressed[key]["joules"], original[key]["joules"])
    if original["kpis"]:
        out["service_cost"] = _ratio(
            compressed["kpis"]["service_cost"]["mean"], original["kpis"]["service_cost"]["mean"]
        )
    return out


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")
