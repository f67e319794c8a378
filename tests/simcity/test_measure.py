"""Measured energy: the NVML meter (against a fake NVML) and calibrated profiles."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from simcity.compute.measure import NvmlEnergyMeter
from simcity.config.devices import DeviceProfile
from simcity.errors import SimcityError

# An H100-like GPU with round numbers: achievable 1e15 × 0.5 = 5e14 FLOP/s.
GPU = DeviceProfile(
    name="h100ish",
    precision="bf16",
    peak_flop_s=1e15,
    utilisation=0.5,
    idle_power_w=70.0,
    max_power_w=700.0,
)
GRID = {
    "pue": 1.2,
    "intensity_g_per_kwh": 400.0,
    "price_per_kwh": 0.15,
    "carbon_price_per_t": 100.0,
}


class FakeNvml:
    """NVML's calls used by the meter, over a board whose energy and clock tests set."""

    def __init__(self, energy_mj: int = 1_000_000, *, has_gpu: bool = True) -> None:
        self.energy_mj = energy_mj
        self.time_s = 100.0
        self.has_gpu = has_gpu
        self.open_count = 0

    def run(self, joules: float, seconds: float) -> None:
        self.energy_mj += round(joules * 1000)
        self.time_s += seconds

    def clock(self) -> float:
        return self.time_s

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        if not self.has_gpu:
            raise RuntimeError("NVML Shared Library Not Found")
        self.open_count += 1

    def nvmlShutdown(self) -> None:  # noqa: N802 - NVML's names
        self.open_count -= 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802 - NVML's names
        if index != 0:
            raise RuntimeError("Invalid Argument")
        return "handle-0"

    def nvmlDeviceGetName(self, handle: str) -> bytes:  # noqa: N802 - NVML's names
        assert handle == "handle-0"
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> int:  # noqa: N802 - NVML's names
        assert handle == "handle-0"
        return self.energy_mj


def test_fake_nvml_meter_returns_the_known_joules() -> None:
    nvml = FakeNvml()
    meter = NvmlEnergyMeter(nvml=nvml, clock=nvml.clock)
    with meter:
        nvml.run(joules=250.0, seconds=0.5)
    assert meter.joules == 250.0
    assert meter.seconds == 0.5
    assert meter.device_name == "NVIDIA H100 80GB HBM3"
    meter.start()
    nvml.run(joules=12.5, seconds=0.1)
    assert meter.stop() == 12.5
    assert nvml.open_count == 0  # every nvmlInit was shut down


def test_fake_nvml_measure_averages_over_calls_after_warmup() -> None:
    nvml = FakeNvml()
    meter = NvmlEnergyMeter(nvml=nvml, clock=nvml.clock)
    calls = []

    def infer() -> None:
        calls.append(1)
        nvml.run(joules=50.0 if len(calls) > 2 else 999.0, seconds=0.1)  # warm-up costs more

    measured = meter.measure(infer, repeats=4, warmup=2)
    assert len(calls) == 6
    assert measured.joules_per_call == pytest.approx(50.0)
    assert measured.seconds_per_call == pytest.approx(0.1)
    assert measured.power_w == pytest.approx(500.0)
    assert measured.num_calls == 4
    assert measured.device_name == "NVIDIA H100 80GB HBM3"
    assert nvml.open_count == 0


def test_meter_says_why_it_cannot_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as if nvidia-ml-py were not installed
    assert NvmlEnergyMeter.available() == (False, "pynvml not installed")
    with pytest.raises(SimcityError, match="pynvml not installed"):
        NvmlEnergyMeter().start()
    no_gpu = FakeNvml(has_gpu=False)
    ok, reason = NvmlEnergyMeter.available(nvml=no_gpu)
    assert not ok
    assert reason == "no NVIDIA GPU found: NVML Shared Library Not Found"
    with pytest.raises(SimcityError, match="no NVIDIA GPU found"):
        NvmlEnergyMeter(nvml=no_gpu).measure(lambda: None)
    assert NvmlEnergyMeter.available(1, nvml=FakeNvml())[0] is False
    assert NvmlEnergyMeter.available(nvml=FakeNvml()) == (True, "NVIDIA H100 80GB HBM3 (device 0)")


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None, reason="pynvml installed")
def test_without_pynvml_installed_the_real_meter_is_unavailable() -> None:
    assert NvmlEnergyMeter.available() == (False, "pynvml not installed")


# --- calibration -------------------------------------------------------------------
