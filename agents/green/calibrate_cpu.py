"""`simcity calibrate --device cpu`: what the policy and the analytics cost on this CPU.

Measured here, with `time.perf_counter` after warm-up calls:

- the policy's latency per decision: the median of back-to-back `act` calls (B = 1, on the
  scenario's city, one torch thread), the way `simcity run` plays it;
- the analytics model's latency per call: the YOLO-like backbone
  (`agents.green.calibrate.perception_model`) on a batch of frames, on ``threads`` torch
  threads (all the CPUs this process may use by default); its FLOPs are counted with
  `torch.utils.flop_counter`, so FLOPs / latency is the rate this CPU achieves.

Energy. Where RAPL's package counters are readable (`simcity.compute.measure.RaplEnergyMeter`),
the packages' power is read while idle (a sleep), while the policy decides and while the
analytics run: the profile's powers are measured and its provenance is "measured". Elsewhere
(a VM, or ``energy_uj`` root-only) the power is stated: the package's TDP per core for CPU
models in `CPU_TDP` (vendor spec), else `DEFAULT_W_PER_CORE`, a vCPU counted as a core, idle
`IDLE_SHARE` of it; latencies are measured but powers are not, so the provenance is
"calibrated". The profile's ``source`` says which, with the figures.

The profile is this CPU (the ``threads`` cores the analytics used): ``peak_flop_s`` is the
analytics' measured FLOP/s with ``utilisation`` 1 (no datasheet peak is claimed),
``call_overhead_s`` the policy's measured latency, ``call_power_w`` one busy core's power above
idle (measured: policy power - idle power), formats fp32 and int8 (torch's CPU int8 kernels
run dynamically quantised policies).
"""

from __future__ import annotations

import os
import re
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter, sleep
from typing import NamedTuple

import torch

from agents.green.calibrate import perception_workload
from agents.policies.attention import AttentionConfig, AttentionPolicy
from agents.policies.compressed import CompressedPolicy, load_policy
from simcity.compute.measure import EnergyEstimate, RaplEnergyMeter, latency_energy
from simcity.config.devices import DeviceProfile, Provenance
from simcity.env import CityEnv
from simcity.errors import SimcityError

CPUINFO = Path("/proc/cpuinfo")
CPU_TDP: tuple[tuple[str, float, int], ...] = (
    (r"EPYC 9654\b", 360.0, 96),
    (r"EPYC 7763\b", 280.0, 64),
    (r"Platinum 8592", 350.0, 64),
    (r"Platinum 8480", 350.0, 56),
    (r"Platinum 8380\b", 270.0, 40),
)
"""CPU model (a pattern of /proc/cpuinfo's model name) -> vendor TDP W and cores per package."""
DEFAULT_W_PER_CORE = 5.0
"""Stated when the model is not in `CPU_TDP`: the mean TDP per core of two current server CPUs,
Xeon Platinum 8480+ (350 W / 56 cores = 6.25 W) and EPYC 9654 (360 W / 96 = 3.75 W)."""
IDLE_SHARE = 0.2
"""Stated idle share of the package power: the shipped epyc_9654_2s profile idles at 150 of
720 W (21 %); reviews report server packages idling at roughly a fifth of TDP."""


class Latency(NamedTuple):
    """Median seconds of one call over ``runs`` timed back-to-back calls (after warm-up)."""

    median_s: float
    runs: int
    total_s: float  # the timed calls' summed time


class StatedPower(NamedTuple):
    w_per_core: float
    why: str


@dataclass(frozen=True)
class CpuCalibration:
    cpu_name: str  # /proc/cpuinfo's model name
    threads: int  # of the analytics run: the profile's cores
    profile: DeviceProfile
    power: str  # how the powers were found: RAPL, or the stated figure and why
    policy: Latency  # per decision, one thread
    policy_flop: int  # FLOPs + int8 ops per decision
    policy_energy: EnergyEstimate  # above idle
    perception: Latency  # per call, ``threads`` threads
    perception_flop: int
    perception_energy: EnergyEstimate  # above idle


def cpu_model_name(cpuinfo: Path | None = None) -> str:
    """The first ``model name`` in /proc/cpuinfo, or "unknown CPU"."""
    try:
        text = (cpuinfo or CPUINFO).read_text()
    except OSError:
        return "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.MULTILINE)
    return found.group(1).strip() if found else "unknown CPU"


def stated_core_power(cpu_name: str) -> StatedPower:
    """Package watts per core at full load, and why that figure.

    >>> stated_core_power("AMD EPYC 9654 96-Core Processor").w_per_core
    3.75
    """
    for pattern, tdp_w, cores in CPU_TDP:
        if re.search(pattern, cpu_name):
            why = f"{cpu_name}: vendor TDP {tdp_w:g} W / {cores} cores"
            return StatedPower(tdp_w / cores, why)
    why = (
        f"{cpu_name!r} has no TDP figure here: stated default {DEFAULT_W_PER_CORE:g} W per core, "
        "the mean TDP per core of Xeon Platinum 8480+ (6.25 W) and EPYC 9654 (3.75 W)"
    )
    return StatedPower(DEFAULT_W_PER_CORE, why)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch's CPU ops on ``threads`` threads inside, as before afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def median_latency(
    fn: Callable[[], object],
    *,
    seconds: float = 1.0,
    min_runs: int = 10,
    max_runs: int = 100_000,
    warmup: int = 3,
    clock: Callable[[], float] | None = None,
) -> Latency:
    """Time ``fn`` after ``warmup`` calls: at least ``min_runs`` calls and until they sum to
    ``seconds`` (at most ``max_runs``); each call timed alone with ``clock`` (perf_counter)."""
    now = clock or perf_counter
    for _ in range(warmup):
        fn()
    times: list[float] = []
    total = 0.0
    while len(times) < max_runs and (len(times) < min_runs or total < seconds):
        start = now()
        fn()
        times.append(now() - start)
        total += times[-1]
    return Latency(statistics.median(times), len(times), total)


def calibrate_cpu(
    *,
    env: CityEnv,
    checkpoint: Path | None = None,
    name: str | None = None,
    frame_px: int = 640,
    batch: int = 1,
    seconds: float = 2.0,
    threads: int | None = None,
    powercap: Path | None = None,
    cpuinfo: Path | None = None,
    clock: Callable[[], float] | None = None,
) -> CpuCalibration:
    """Measure the policy and the analytics on this CPU and make its profile (module doc).

    ``powercap`` is the RAPL folder (`simcity.compute.measure.POWERCAP` if None), ``cpuinfo``
    the CPU's description, ``clock`` the timer (perf_counter): tests pass stand-ins.
    """
    now = clock or perf_counter
    threads = threads or _usable_cpus()
    cpu_name = cpu_model_name(cpuinfo)
    rapl_ok, rapl_why = RaplEnergyMeter.available(powercap)
    meter = RaplEnergyMeter(powercap, clock=now) if rapl_ok else None

    # The policy, on the scenario's city, one decision at a time, one thread.
    policy = _policy(checkpoint, env)
    policy_flop = policy.cost.flop + policy.cost.int8_op
    obs, _ = env.reset(seed=0)
    with torch_threads(1):
        policy_lat, policy_w = _timed(lambda: policy.act(obs), seconds, 10, now, meter)

    # The analytics model on a batch of frames, on every thread.
    perception, frames, perception_flop = perception_workload(batch, frame_px)

    def perceive() -> None:
        with torch.no_grad():
            perception(frames)

    with torch_threads(threads):
        perception_lat, busy_w = _timed(perceive, seconds, 3, now, meter)

    # Powers: read from RAPL (idle: a sleep), or stated.
    if meter is not None:
        idle_w = meter.measure(lambda: sleep(0.05), repeats=max(2, round(seconds / 0.05))).power_w
        if busy_w <= 0.0:
            raise SimcityError("RAPL read no energy", field="rapl", expected="counters that move")
        max_w, idle_w = max(busy_w, idle_w), min(idle_w, busy_w)
        call_w = max(0.0, policy_w - idle_w)
        power = (
            f"{rapl_why}: idle {idle_w:.4g} W, {policy_w:.4g} W while the policy decides, "
            f"{busy_w:.4g} W while the analytics run (whole packages, other processes included)"
        )
    else:
        stated = stated_core_power(cpu_name)
        max_w = stated.w_per_core * threads
        idle_w = IDLE_SHARE * max_w
        call_w = (max_w - idle_w) / threads
        power = (
            f"stated, not measured ({rapl_why}): {stated.why}; x {threads} cores = {max_w:.4g} W; "
            f"idle {IDLE_SHARE:.0%} of it (stated); one busy core adds {call_w:.4g} W"
        )
    measured = meter is not None
    source = "RAPL" if measured else "stated"
    provenance: Provenance = "measured" if measured else "calibrated"
    profile = DeviceProfile(
        name=name or f"cpu_{provenance}",
        precision="fp32",
        peak_flop_s=perception_flop / perception_lat.median_s,
        utilisation=1.0,
        idle_power_w=idle_w,
        max_power_w=max_w,
        provenance=provenance,
        formats=("fp32", "int8"),
        call_overhead_s=policy_lat.median_s,
        call_power_w=call_w,
        source=(
            f"Measured by `simcity calibrate --device cpu` on {cpu_name}: policy "
            f"{policy_lat.median_s * 1e3:.4g} ms per decision (median of {policy_lat.runs}, one "
            f"thread, {policy_flop:.4g} FLOP, {env.city.num_nodes} nodes) = call_overhead_s; "
            f"analytics {perception_lat.median_s:.4g} s per call (median of "
            f"{perception_lat.runs}, {threads} threads, {perception_flop:.4g} FLOP: {batch} "
            f"frames of {frame_px} px) = peak_flop_s at utilisation 1 (no datasheet peak). "
            f"Power {power}."
        ),
    )
    return CpuCalibration(
        cpu_name=cpu_name,
        threads=threads,
        profile=profile,
        power=power,
        policy=policy_lat,
        policy_flop=policy_flop,
        policy_energy=latency_energy(
            policy_lat.median_s, call_w, power_source=source, power_measured=measured
        ),
        perception=perception_lat,
        perception_flop=perception_flop,
        perception_energy=latency_energy(
            perception_lat.median_s, max_w - idle_w, power_source=source, power_measured=measured
        ),
    )


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _policy(checkpoint: Path | None, env: CityEnv) -> CompressedPolicy:
    if checkpoint is not None:
        return load_policy(checkpoint, env)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return CompressedPolicy(AttentionPolicy(AttentionConfig()).eval(), env, "default")


def _timed(
    fn: Callable[[], object],
    seconds: float,
    min_runs: int,
    clock: Callable[[], float],
    meter: RaplEnergyMeter | None,
) -> tuple[Latency, float]:
    """`median_latency` of ``fn``, and the RAPL power over its calls (0 without a meter)."""
    for _ in range(3):
        fn()
    if meter is None:
        return median_latency(fn, seconds=seconds, min_runs=min_runs, warmup=0, clock=clock), 0.0
    with meter:
        latency = median_latency(fn, seconds=seconds, min_runs=min_runs, warmup=0, clock=clock)
    return latency, meter.joules / meter.seconds if meter.seconds > 0 else 0.0
