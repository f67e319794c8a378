"""Measured energy: the NVML meter (against a fake NVML), the RAPL meter (against a fake
powercap tree), latency x a stated power, and calibrated profiles."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from simcity.compute import measure
from simcity.compute.measure import (
    NvmlEnergyMeter,
    RaplEnergyMeter,
    latency_energy,
    rapl_packages,
)
from simcity.errors import SimcityError


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


# --- RAPL --------------------------------------------------------------------------


def fake_rapl(root: Path, packages: dict[int, tuple[int, int]], *, core: bool = True) -> Path:
    """A powercap tree: package domain N with (energy_uj, max_energy_range_uj), each with a
    core subdomain (which must not be counted), and an MMIO copy of package 0 (nor that)."""
    for index, (energy, max_range) in packages.items():
        zone = root / f"intel-rapl:{index}"
        zone.mkdir(parents=True)
        (zone / "name").write_text(f"package-{index}\n")
        (zone / "energy_uj").write_text(f"{energy}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
        if core:
            sub = root / f"intel-rapl:{index}:0"
            sub.mkdir()
            (sub / "name").write_text("core\n")
            (sub / "energy_uj").write_text("123456789\n")
            (sub / "max_energy_range_uj").write_text(f"{max_range}\n")
    mmio = root / "intel-rapl-mmio:0"
    mmio.mkdir()
    (mmio / "name").write_text("package-0\n")
    (mmio / "energy_uj").write_text("999999999\n")
    (mmio / "max_energy_range_uj").write_text("1000000000\n")
    return root


def set_energy(root: Path, index: int, energy_uj: int) -> None:
    (root / f"intel-rapl:{index}" / "energy_uj").write_text(f"{energy_uj}\n")


def test_fake_rapl_meter_sums_packages_and_adds_back_a_wrap_around(tmp_path: Path) -> None:
    """Package 0 wraps: from 1 J below its 262,143 J range to 0.5 J past 0 is 1.5 J;
    package 1 goes from 10 J to 12.25 J. Together 3.75 J in 0.25 s."""
    max_range = 262_143_328_850
    root = fake_rapl(tmp_path, {0: (max_range - 1_000_000, max_range), 1: (10_000_000, max_range)})
    clock = iter([5.0, 5.25])
    meter = RaplEnergyMeter(root, clock=lambda: next(clock))
    assert RaplEnergyMeter.available(root) == (True, "RAPL package-0, package-1")
    with meter:
        set_energy(root, 0, 500_000)
        set_energy(root, 1, 12_250_000)
    assert meter.joules == pytest.approx(3.75)
    assert meter.seconds == pytest.approx(0.25)
    assert meter.device_name == "RAPL package-0, package-1"
    assert [d.name for d in rapl_packages(root)] == ["package-0", "package-1"]


def test_fake_rapl_measure_averages_over_calls_after_warmup(tmp_path: Path) -> None:
    root = fake_rapl(tmp_path, {0: (0, 10**12)}, core=False)
    state = {"uj": 0, "s": 0.0, "calls": 0}

    def call() -> None:  # 2 mJ in 1 ms per call: 2 W; the warm-up call costs more
        state["calls"] += 1
        state["uj"] += 2_000 if state["calls"] > 1 else 99_000
        state["s"] += 1e-3
        set_energy(root, 0, int(state["uj"]))

    measured = RaplEnergyMeter(root, clock=lambda: state["s"]).measure(call, repeats=8)
    assert measured.joules_per_call == pytest.approx(2e-3)
    assert measured.seconds_per_call == pytest.approx(1e-3)
    assert measured.power_w == pytest.approx(2.0)
    assert measured.num_calls == 8


def test_rapl_says_why_it_cannot_measure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, why = RaplEnergyMeter.available(tmp_path / "none")
    assert not ok and why.startswith("RAPL not present") and "none" in why
    (tmp_path / "empty").mkdir()
    ok, why = RaplEnergyMeter.available(tmp_path / "empty")
    assert not ok and "no package domain" in why
    root = fake_rapl(tmp_path / "locked", {0: (5, 100)})
    real_read_text = Path.read_text

    def root_only(path: Path, *args: object, **kwargs: object) -> str:
        if path.name == "energy_uj":  # as for a user since Linux 5.10
            raise PermissionError(13, "Permission denied")
        return real_read_text(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", root_only)
    ok, why = RaplEnergyMeter.available(root)
    assert (
        not ok
        and why == f"RAPL not readable: {root / 'intel-rapl:0' / 'energy_uj'}: permission denied"
    )
    with pytest.raises(SimcityError, match=r"root-only since Linux 5\.10") as err:
        RaplEnergyMeter(root).start()
    assert err.value.field == "rapl"
    monkeypatch.undo()
    (root / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    with pytest.raises(SimcityError, match="RAPL not readable"):
        RaplEnergyMeter(root).measure(lambda: None)
    meter = RaplEnergyMeter(tmp_path / "none")
    with pytest.raises(RuntimeError):
        meter.stop()


def test_the_default_powercap_folder_is_read_when_the_meter_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(measure, "POWERCAP", fake_rapl(tmp_path, {0: (7, 100)}))
    assert RaplEnergyMeter.available() == (True, "RAPL package-0")
    monkeypatch.setattr(measure, "POWERCAP", tmp_path / "gone")
    assert RaplEnergyMeter.available()[0] is False


def test_latency_energy_is_time_times_power_and_says_where_each_comes_from() -> None:
    stated = latency_energy(1.5e-3, 4.0, power_source="TDP per core")
    assert stated.joules == pytest.approx(6e-3)
    assert stated.provenance == "calibrated"
    assert stated.basis == "1.5 ms measured x 4 W stated (TDP per core)"
    read = latency_energy(1.5e-3, 4.0, power_source="RAPL", power_measured=True)
    assert read.provenance == "measured" and "4 W measured (RAPL)" in read.basis
    with pytest.raises(SimcityError, match="seconds"):
        latency_energy(-1.0, 4.0, power_source="x")
