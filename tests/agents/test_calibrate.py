"""`simcity calibrate` against a fake NVML whose energy counter the test drives."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from agents.cli import green as green_cli
from agents.green.calibrate import base_for, calibrate_device, devices_toml, write_profile
from simcity.config.devices import DeviceProfile, device_profile, load_devices
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError

runner = CliRunner()
JOULES = {"policy": 0.5, "perception": 30.0}  # per call, on the fake board
SECONDS = {"policy": 0.002, "perception": 0.1}


class FakeNvml:
    """The NVML calls the meter makes, over a board whose counter advances per model call."""

    def __init__(self, *, has_gpu: bool = True) -> None:
        self.energy_mj = 5_000_000
        self.time_s = 10.0
        self.has_gpu = has_gpu
        self.calls = {"policy": 0, "perception": 0}

    def synchronize(self, which: str) -> None:
        self.calls[which] += 1
        self.energy_mj += round(JOULES[which] * 1000)
        self.time_s += SECONDS[which]

    def clock(self) -> float:
        return self.time_s

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        if not self.has_gpu:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:  # noqa: N802 - NVML's names
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802 - NVML's names
        return f"handle-{index}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:  # noqa: N802 - NVML's names
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:  # noqa: N802 - NVML's names
        return self.energy_mj


def conv_flop(px: int, width: int = 32, stages: int = 5) -> int:
    """FLOPs of `perception_model` on one px x px frame, by hand: 2 x Cin x Cout x 9 per
    output pixel of every 3 x 3 convolution (BatchNorm and SiLU are not counted)."""
    total, channels, size = 0, 3, px
    for k in range(stages):
        out = width * 2**k
        size = (size + 1) // 2  # stride 2, padding 1
        total += 2 * channels * out * 9 * size * size + 2 * out * out * 9 * size * size
        channels = out
    return total


def test_calibrate_reads_the_known_energy_and_writes_a_usable_profile(tmp_path: Path) -> None:
    nvml = FakeNvml()
    env = CityEnv("tiny")
    result = calibrate_device(
        device="cpu",
        env=env,
        frame_px=32,
        batch=2,
        seconds=0.5,
        nvml=nvml,
        clock=nvml.clock,
        synchronize=nvml.synchronize,
    )
    assert result.gpu_name == "NVIDIA H100 80GB HBM3" and result.base == "h100_sxm"
    assert result.policy.joules_per_call == pytest.approx(JOULES["policy"])
    assert result.policy.seconds_per_call == pytest.approx(SECONDS["policy"])
    assert result.perception.joules_per_call == pytest.approx(JOULES["perception"])
    assert result.perception.power_w == pytest.approx(300.0)
    assert result.perception.num_calls == 10  # 0.5 s at 0.1 s per call, at least 10
    assert result.policy.num_calls == 250  # 0.5 s at 2 ms per call
    assert result.perception_flop == 2 * conv_flop(32)
    assert result.policy_flop > 0
    profile = result.profile
    h100 = device_profile("h100_sxm")
    # A busy run: max power is the measured 300 W, utilisation the measured FLOP/s over peak.
    assert profile.name == "h100_sxm_measured" and profile.max_power_w == pytest.approx(300.0)
    assert profile.utilisation == pytest.approx(result.perception_flop / 0.1 / h100.peak_flop_s)
    assert profile.peak_int8_op_s == h100.peak_int8_op_s
    assert "0.5 J per policy decision" in profile.source
    assert profile.provenance == "calibrated"
    assert profile.call_overhead_s == pytest.approx(SECONDS["policy"])  # measured per decision
    # The fitted model reproduces the measured joules of a perception call.
    busy = profile.max_power_w * result.perception_flop / profile.achievable_flop_s
    assert busy == pytest.approx(JOULES["perception"])

    path = tmp_path / "devices.toml"
    write_profile(path, result.profile)
    assert load_devices(path) == {profile.name: profile}
    scenario = load_scenario("tiny")
    compute = scenario.compute.model_copy(update={"device": profile.name, "devices_file": path})
    env = CityEnv(scenario.model_copy(update={"compute": compute}))
    env.reset(seed=0)
    assert env.world is not None and env.world.monitoring.device == profile
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["compute_kwh"] > 0.0


def test_devices_file_keeps_other_profiles_and_odd_text(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    odd = DeviceProfile(
        name="lab-gpu_2",
        precision="fp16",
        peak_flop_s=1e14,
        utilisation=0.3,
        idle_power_w=20.0,
        max_power_w=75.5,
        source='say "hi"\\ on two\nlines, 31 °C',
    )
    write_profile(path, odd)
    write_profile(path, device_profile("t4"))
    assert load_devices(path) == {"lab-gpu_2": odd, "t4": device_profile("t4")}
    assert devices_toml(load_devices()).count("[") >= 6


def test_calibrate_without_a_gpu_says_so_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()
    green_cli.register(app)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["calibrate", "--device", "cuda"])
    assert result.exit_code == 2
    assert "no CUDA GPU" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["calibrate", "--device", "tpu"])  # cpu is measured now
    assert result.exit_code == 2 and "cuda or cuda:N" in result.output
    with pytest.raises(SimcityError, match="no NVIDIA GPU found"):
        calibrate_device(device="cpu", env=CityEnv("tiny"), nvml=FakeNvml(has_gpu=False))
    with pytest.raises(SimcityError, match="no shipped profile"):
        base_for("Some Other GPU")
    assert base_for("NVIDIA H200") == "h100_sxm" and base_for("Tesla T4") == "t4"
