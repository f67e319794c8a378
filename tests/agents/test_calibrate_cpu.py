"""`simcity calibrate --device cpu`: a known latency from a stand-in timer, powers stated
(no RAPL) or read from a fake powercap tree whose counters the test drives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import typer
from test_calibrate import conv_flop
from typer.testing import CliRunner

from agents.cli import green as green_cli
from agents.green import calibrate_cpu as cpu
from agents.green.calibrate_cpu import (
    calibrate_cpu,
    cpu_model_name,
    median_latency,
    stated_core_power,
)
from simcity.compute import measure
from simcity.config.devices import device_profile, load_devices
from simcity.config.monitoring import ComputeConfig
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv

runner = CliRunner()
TICK = 2.0**-12  # s per timer reading: a power of two, so sums of readings are exact


class TickingClock:
    """A timer that advances ``tick`` seconds each time it is read: every timed call lasts
    exactly one tick."""

    def __init__(self, tick: float = TICK) -> None:
        self.tick = tick
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def fake_cpuinfo(tmp_path: Path, model: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nvendor_id\t: x\nmodel name\t: {model}\nflags\t: fpu\n")
    return path


def test_median_latency_times_each_call_alone() -> None:
    clock = TickingClock(0.5)
    calls = []
    latency = median_latency(lambda: calls.append(1), seconds=3.0, min_runs=2, clock=clock)
    assert latency.median_s == 0.5 and latency.runs == 6 and latency.total_s == 3.0
    assert len(calls) == 3 + 6  # warm-up calls are not timed
    few = median_latency(lambda: None, seconds=0.0, min_runs=4, warmup=0, clock=TickingClock())
    assert few.runs == 4


def test_stated_power_per_core_comes_from_the_cpu_model(tmp_path: Path) -> None:
    assert cpu_model_name(fake_cpuinfo(tmp_path, "AMD EPYC 9654 96-Core Processor")) == (
        "AMD EPYC 9654 96-Core Processor"
    )
    assert cpu_model_name(tmp_path / "missing") == "unknown CPU"
    xeon = stated_core_power("Intel(R) Xeon(R) Platinum 8480+")
    assert xeon.w_per_core == pytest.approx(350 / 56) and "TDP 350 W / 56 cores" in xeon.why
    unknown = stated_core_power("Intel(R) Xeon(R) Processor")
    assert unknown.w_per_core == cpu.DEFAULT_W_PER_CORE == 5.0
    assert "stated default 5 W per core" in unknown.why


def test_calibrate_cli_on_cpu_writes_the_measured_latency_and_stated_power(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No RAPL: latency and FLOP/s measured (one tick per call), power stated: an EPYC 9654 is
    360 W / 96 cores = 3.75 W per core, idle 20 %, so one busy core adds 3 W above idle."""
    monkeypatch.setattr(cpu, "perf_counter", TickingClock())
    monkeypatch.setattr(measure, "POWERCAP", tmp_path / "no-powercap")
    monkeypatch.setattr(cpu, "CPUINFO", fake_cpuinfo(tmp_path, "AMD EPYC 9654 96-Core Processor"))
    app = typer.Typer()
    green_cli.register(app)
    out = tmp_path / "devices.toml"
    args = ["calibrate", "--device", "cpu", "--out", str(out), "--scenario", "tiny"]
    result = runner.invoke(app, [*args, "--seconds", "0.1", "--frame-px", "32", "--batch", "1"])
    assert result.exit_code == 0, result.output
    assert "cpu_calibrated" in result.output and "[compute]" in result.output

    profile = load_devices(out)["cpu_calibrated"]
    threads = len(os.sched_getaffinity(0))
    assert profile.provenance == "calibrated"
    assert profile.call_overhead_s == TICK  # the measured latency per decision
    assert profile.peak_flop_s == pytest.approx(conv_flop(32) / TICK) and profile.utilisation == 1
    assert profile.max_power_w == pytest.approx(3.75 * threads)
    assert profile.idle_power_w == pytest.approx(0.75 * threads)
    assert profile.call_power_w == pytest.approx(3.0)
    assert profile.formats == ("fp32", "int8") and profile.executes("int8")
    assert "96-Core Processor: vendor TDP 360 W / 96 cores" in profile.source
    assert "RAPL not present" in profile.source
    # A policy call of few FLOPs lasts the measured latency, at one core's power above idle.
    assert profile.call_seconds(1e3) == TICK
    assert profile.call_energy_j(profile.call_seconds(1e3)) == pytest.approx(3.0 * TICK)

    scenario = load_scenario("tiny")
    fields = {"device": profile.name, "policy_device": profile.name, "devices_file": out}
    compute = ComputeConfig.model_validate({**scenario.compute.model_dump(), **fields})
    assert device_profile(compute.policy_device or "", compute.devices_file) == profile
    env = CityEnv(scenario.model_copy(update={"compute": compute}))
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["compute_kwh"] > 0.0


def test_calibrate_cpu_reads_rapl_powers_where_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake package counter that the timer drives: 20 W while idle (a sleep), 30 W while
    the policy decides on one thread, 50 W while the analytics run on two. The profile's
    powers are those read: idle 20, max 50, a policy call 30 - 20 = 10 W above idle."""
    root = tmp_path / "powercap"
    zone = root / "intel-rapl:0"
    zone.mkdir(parents=True)
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    state = {"t": 0.0, "uj": 1_000_000.0, "idle": False}

    def advance(seconds: float, watts: float) -> None:
        state["t"] += seconds
        state["uj"] += watts * seconds * 1e6
        (zone / "energy_uj").write_text(f"{round(state['uj'])}\n")

    def clock() -> float:
        watts = 20.0 if state["idle"] else 50.0 if torch.get_num_threads() == 2 else 30.0
        advance(1e-4, watts)
        return state["t"]

    def idle(seconds: float) -> None:
        state["idle"] = True
        advance(seconds, 20.0)

    advance(0.0, 0.0)
    monkeypatch.setattr(cpu, "sleep", idle)
    result = calibrate_cpu(
        env=CityEnv("tiny"),
        frame_px=32,
        batch=1,
        seconds=0.01,
        threads=2,
        powercap=root,
        cpuinfo=fake_cpuinfo(tmp_path, "Some CPU"),
        clock=clock,
    )
    profile = result.profile
    assert profile.provenance == "measured" and profile.name == "cpu_measured"
    assert profile.idle_power_w == pytest.approx(20.0, rel=1e-3)
    assert profile.max_power_w == pytest.approx(50.0, rel=1e-3)
    assert profile.call_power_w == pytest.approx(10.0, rel=1e-2)
    assert profile.call_overhead_s == pytest.approx(1e-4)
    assert result.policy_energy.provenance == "measured"
    assert result.policy_energy.joules == pytest.approx(10.0 * 1e-4, rel=1e-2)
    assert result.perception_energy.joules == pytest.approx(30.0 * 1e-4, rel=1e-3)
    assert "RAPL package-0" in profile.source and "stated" not in profile.source


def test_calibrate_rejects_devices_it_cannot_measure() -> None:
    app = typer.Typer()
    green_cli.register(app)
    result = runner.invoke(app, ["calibrate", "--device", "mps"])
    assert result.exit_code == 2 and "cpu, cuda or cuda:N" in result.output
    assert "Traceback" not in result.output
