"""Compute bills: hand-computed energy and carbon, GPU counts, profiles, a fake NVML meter."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simcity.compute.bill import ComputeBill, bill_step
from simcity.compute.measure import calibrate_profile
from simcity.config.devices import DEVICES_PATH, DeviceProfile, device_profile, load_devices
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


def bill(units: float = 10.0, **changes: Any) -> ComputeBill:
    """15-minute step, 1.5e15 FLOP per unit-minute, no policy, unless ``changes`` say so."""
    args: dict[str, Any] = {
        "device": GPU,
        "analytics_flop_per_unit_min": 1.5e15,
        "units": units,
        "policy_flop_per_decision": 0.0,
        "decisions": 0,
        "dt_min": 15.0,
        **GRID,
    }
    args.update(changes)
    return bill_step(**args)


# --- the bill by hand --------------------------------------------------------------


def test_one_gpu_half_busy_for_15_minutes_by_hand() -> None:
    """10 units × 1.5e15 FLOP/min = 2.5e14 FLOP/s = half of one GPU's 5e14.

    Power 70 + (700 - 70) × 0.5 = 385 W; × 0.25 h = 96.25 Wh = 0.09625 kWh at the GPU;
    × PUE 1.2 = 0.1155 kWh; × 400 g/kWh = 46.2 g; money 0.1155 × 0.15 = 0.017325 and
    46.2e-6 t × 100 = 0.00462.
    """
    b = bill(10.0)
    assert b.num_gpus == 1
    assert b.flop == pytest.approx(2.25e17)  # 2.5e14 FLOP/s × 900 s
    assert b.utilisation == pytest.approx(0.5)
    assert b.it_power_w == pytest.approx(385.0)
    assert b.it_energy_kwh == pytest.approx(0.09625)
    assert b.facility_energy_kwh == pytest.approx(0.1155)
    assert b.carbon_g == pytest.approx(46.2)
    assert b.energy_cost == pytest.approx(0.017325)
    assert b.carbon_cost == pytest.approx(0.00462)
    assert b.analytics_energy_kwh == pytest.approx(0.1155)
    assert b.policy_energy_kwh == 0.0


def test_gpu_count_steps_up_past_one_gpus_achievable_flop_s() -> None:
    """20 units fill one GPU exactly (5e14 FLOP/s): 700 W. 21 units need 1.05 GPUs: two on,
    2 × 70 + 630 × 1.05 = 801.5 W."""
    full = bill(20.0)
    assert full.num_gpus == 1
    assert full.it_power_w == pytest.approx(700.0)
    assert full.utilisation == pytest.approx(1.0)
    over = bill(21.0)
    assert over.num_gpus == 2
    assert over.it_power_w == pytest.approx(801.5)
    assert over.utilisation == pytest.approx(0.525)
    assert bill(41.0).num_gpus == 3


def test_exactly_one_gpus_worth_needs_one_gpu_despite_rounding() -> None:
    """42 units sharing one H100's 395.76e12 achievable FLOP/s for 30 s: the FLOPs round to
    1 + 2e-16 GPUs of work, which must not power on a second GPU."""
    h100 = device_profile("h100_sxm")
    b = bill(42.0, device=h100, analytics_flop_per_unit_min=395.76e12 * 60.0 / 42.0, dt_min=0.5)
    assert b.num_gpus == 1
    assert b.it_power_w == pytest.approx(700.0)


def test_no_load_costs_nothing_unless_gpus_must_stay_on() -> None:
    """One GPU kept on idles at 70 W: × 0.25 h = 0.0175 kWh; × 1.2 × 400 = 8.4 g."""
    empty = bill(0.0)
    assert empty.num_gpus == 0
    assert empty.it_energy_kwh == empty.carbon_g == empty.energy_cost == 0.0
    assert empty.utilisation == 0.0
    idle = bill(0.0, min_gpus=1)
    assert idle.num_gpus == 1
    assert idle.it_energy_kwh == pytest.approx(0.0175)
    assert idle.carbon_g == pytest.approx(8.4)
    assert idle.analytics_energy_kwh == pytest.approx(idle.facility_energy_kwh)
    assert idle.policy_energy_kwh == 0.0
    assert bill(10.0, min_gpus=3).it_power_w == pytest.approx(3 * 70.0 + 630.0 * 0.5)


def test_the_policy_is_billed_its_time_on_its_device_by_hand() -> None:
    """A policy's decision is one call: time on its device x the power of a call.

    On the test GPU (no overhead floor, call power (700 - 70) x 0.5 = 315 W above idle), 4
    decisions x 6.25e15 FLOP take 6.25e15 / 5e14 = 12.5 s each: 50 s x 315 W = 15,750 J =
    0.004375 kWh at the GPU, 0.00525 kWh with PUE 1.2, on top of the analytics' 0.1155 kWh
    (which the policy does not change: it keeps no device on).
    """
    b = bill(10.0, policy_flop_per_decision=6.25e15, decisions=4)
    assert b.policy_seconds == pytest.approx(12.5)
    assert b.policy_energy_kwh == pytest.approx(0.00525)
    assert b.analytics_energy_kwh == pytest.approx(0.1155)
    assert b.facility_energy_kwh == pytest.approx(0.12075)
    assert b.num_gpus == 1 and b.utilisation == pytest.approx(0.5)
    assert (b.analytics_provenance, b.policy_provenance) == ("datasheet", "datasheet")


def test_a_small_call_is_billed_its_launch_floor_or_its_measured_latency() -> None:
    """A CPU-like profile: 1 ms floor, 40 W above idle during a call. A 9e6-FLOP decision
    would take 9e6 / 5e11 = 18 us of work, so it is billed the 1 ms floor: 0.04 J; a
    measured 2.5 ms latency is billed instead when given: 0.1 J (x PUE 1.2 at the facility)."""
    cpu = DeviceProfile(
        name="cpu",
        precision="fp32",
        peak_flop_s=1e12,
        utilisation=0.5,
        idle_power_w=60.0,
        max_power_w=200.0,
        call_overhead_s=1e-3,
        call_power_w=40.0,
        provenance="calibrated",
    )
    modelled = bill(0.0, policy_flop_per_decision=9e6, decisions=1, policy_device=cpu)
    assert modelled.policy_seconds == pytest.approx(1e-3)
    assert modelled.policy_energy_kwh * 3.6e6 == pytest.approx(0.04 * 1.2)
    assert modelled.policy_provenance == "calibrated"
    measured = bill(
        0.0, policy_flop_per_decision=9e6, decisions=1, policy_device=cpu, policy_latency_s=2.5e-3
    )
    assert measured.policy_energy_kwh * 3.6e6 == pytest.approx(0.1 * 1.2)
    assert measured.policy_provenance == "measured"


def test_a_policy_that_allocates_nothing_pays_the_same_fleet_idle_as_any_other() -> None:
    """No units: no GPU is powered on for the policy (it used to be billed a whole idle
    GPU for the step); with one GPU kept on, every policy pays the same idle."""
    for min_gpus in (0, 1):
        heuristic = bill(0.0, min_gpus=min_gpus)
        policy = bill(0.0, min_gpus=min_gpus, policy_flop_per_decision=9e6, decisions=1)
        assert policy.num_gpus == heuristic.num_gpus == min_gpus
        assert policy.analytics_energy_kwh == heuristic.analytics_energy_kwh
        assert policy.facility_energy_kwh == pytest.approx(
            heuristic.facility_energy_kwh + policy.policy_energy_kwh
        )


def test_int8_is_never_billed_on_a_device_that_cannot_run_it() -> None:
    with pytest.raises(SimcityError, match="int8") as err:
        bill(10.0, policy_flop_per_decision=1e6, decisions=1, policy_precision="int8")
    assert err.value.field == "policy_device"
    int8_gpu = GPU.model_copy(update={"peak_int8_op_s": 2e15})
    ok = bill(
        10.0,
        policy_flop_per_decision=1e6,
        decisions=1,
        policy_precision="int8",
        policy_device=int8_gpu,
    )
    assert ok.policy_energy_kwh > 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("units", -1.0),
        ("units", math.nan),
        ("analytics_flop_per_unit_min", math.inf),
        ("policy_flop_per_decision", -5.0),
        ("decisions", -1),
        ("decisions", 1.5),
        ("dt_min", 0.0),
        ("dt_min", math.nan),
        ("min_gpus", -2),
        ("pue", 0.9),
        ("intensity_g_per_kwh", math.nan),
        ("price_per_kwh", -0.1),
        ("carbon_price_per_t", -1.0),
    ],
)
def test_bad_inputs_name_the_parameter(field: str, value: float) -> None:
    with pytest.raises(SimcityError) as info:
        bill(**{field: value})
    assert info.value.field == field


@given(
    units=st.floats(0.0, 1e4),
    more=st.floats(0.0, 1e4),
    flop_per_unit_min=st.floats(0.0, 1e18),
    policy_flop=st.floats(0.0, 1e16),
    decisions=st.integers(0, 100),
    dt_min=st.floats(0.1, 1440.0),
    min_gpus=st.integers(0, 4),
    pue=st.floats(1.0, 3.0),
    intensity=st.floats(0.0, 2000.0),
)
def test_bills_are_finite_non_negative_split_and_monotone_in_units(
    units: float,
    more: float,
    flop_per_unit_min: float,
    policy_flop: float,
    decisions: int,
    dt_min: float,
    min_gpus: int,
    pue: float,
    intensity: float,
) -> None:
    args: dict[str, Any] = {
        "analytics_flop_per_unit_min": flop_per_unit_min,
        "policy_flop_per_decision": policy_flop,
        "decisions": decisions,
        "dt_min": dt_min,
        "min_gpus": min_gpus,
        "pue": pue,
        "intensity_g_per_kwh": intensity,
    }
    low, high = bill(units, **args), bill(units + more, **args)
    for b in (low, high):
        money = (b.it_energy_kwh, b.facility_energy_kwh, b.carbon_g, b.energy_cost, b.carbon_cost)
        assert all(math.isfinite(x) and x >= 0.0 for x in money)
        assert b.analytics_energy_kwh >= 0.0
        assert b.policy_energy_kwh >= 0.0
        assert b.analytics_energy_kwh + b.policy_energy_kwh == pytest.approx(
            b.facility_energy_kwh, rel=1e-12, abs=1e-300
        )
        assert 0.0 <= b.utilisation <= 1.0 + 1e-9
        assert b.num_gpus >= min_gpus
    assert high.facility_energy_kwh >= low.facility_energy_kwh
    assert high.carbon_g >= low.carbon_g
    assert high.energy_cost + high.carbon_cost >= low.energy_cost + low.carbon_cost
    assert high.num_gpus >= low.num_gpus


# --- profiles ----------------------------------------------------------------------


def test_every_shipped_profile_loads_with_sane_figures() -> None:
    devices = load_devices()
    expected = {"h100_sxm", "a100_sxm_80gb", "l4", "t4", "jetson_agx_orin_64gb", "epyc_9654_2s"}
    assert set(devices) == expected
    for name, device in devices.items():
        assert device.name == name
        assert device.max_power_w >= device.idle_power_w > 0.0
        assert device.peak_flop_s > 0.0
        assert 0.0 < device.utilisation <= 1.0
        assert len(device.source) > 50
    assert Path(__file__).parents[2] / "simcity" / "data" / "devices.toml" == DEVICES_PATH


def test_shipped_figures_are_the_public_specs() -> None:
    """Dense BF16/FP16 tensor peaks and board power limits from the vendors' datasheets."""
    specs = {
        "h100_sxm": ("bf16", 989.4e12, 700.0),
        "a100_sxm_80gb": ("bf16", 312e12, 400.0),
        "l4": ("bf16", 121e12, 72.0),
        "t4": ("fp16", 65e12, 70.0),
        "jetson_agx_orin_64gb": ("fp16", 42.5e12, 60.0),
    }
    for name, (precision, peak_flop_s, max_power_w) in specs.items():
        device = device_profile(name)
        assert (device.precision, device.peak_flop_s, device.max_power_w) == (
            precision,
            peak_flop_s,
            max_power_w,
        )
    # 2 sockets × 96 cores × 32 FP32 FLOP/cycle × 2.4 GHz; 2 × 360 W TDP.
    cpu = device_profile("epyc_9654_2s")
    assert cpu.peak_flop_s == pytest.approx(2 * 96 * 32 * 2.4e9)
    assert cpu.max_power_w == 720.0


def test_unknown_device_lists_the_known_ones() -> None:
    assert device_profile("H100_SXM").name == "h100_sxm"
    with pytest.raises(SimcityError, match="unknown device 'v100'") as info:
        device_profile("v100")
    assert info.value.expected is not None
    assert "h100_sxm" in info.value.expected
    assert "t4" in info.value.expected


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    return path


GOOD = """
[my_gpu]
precision = "fp16"
peak_flop_s = 100e12
utilisation = 0.5
idle_power_w = 10
max_power_w = 60
"""


def test_users_file_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    device = device_profile("my_gpu", path)
    assert device.achievable_flop_s == 50e12
    assert device.memory_gb is None
    assert load_devices(path) == {"my_gpu": device}


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            GOOD.replace("peak_flop_s = 100e12", "peak_flop_s = -1"),
            "my_gpu.peak_flop_s",
            "greater than 0",
        ),
        (GOOD.replace("peak_flop_s = 100e12", "peak_flop_s = inf"), "my_gpu.peak_flop_s", "finite"),
        (
            GOOD.replace("utilisation = 0.5", "utilisation = 1.5"),
            "my_gpu.utilisation",
            "less than or equal to 1",
        ),
        (GOOD.replace("idle_power_w = 10", ""), "my_gpu.idle_power_w", "missing"),
        (GOOD + "wattage = 3\n", "my_gpu.wattage", "unknown key"),
        (GOOD.replace('"fp16"', '"fp12"'), "my_gpu.precision", "'bf16'"),
        (GOOD.replace("max_power_w = 60", "max_power_w = 5"), "my_gpu", "below idle"),
        (GOOD + 'name = "x"\n', "my_gpu.name", "unknown key"),
        ("speed = 3\n", "speed", "not a table"),
    ],
    ids=["negative", "infinite", "share", "missing", "extra", "precision", "max", "name", "flat"],
)
def test_a_malformed_devices_file_names_file_and_field(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SimcityError, match=message) as info:
        load_devices(path)
    assert info.value.file == str(path)
    assert info.value.field == field


def test_unreadable_devices_files_name_the_file(tmp_path: Path) -> None:
    for path in (write(tmp_path, "[a\n"), write(tmp_path, ""), tmp_path / "missing.toml"):
        with pytest.raises(SimcityError) as info:
            load_devices(path)
        assert info.value.file == str(path)


# --- measuring with a fake NVML ----------------------------------------------------


def test_calibrated_profile_reproduces_a_measured_busy_run() -> None:
    """1e15 FLOP in 4 s for 1200 J: 2.5e14 FLOP/s (utilisation 0.25 of 1e15) at 300 W.

    Billing the same FLOPs, back to back on one GPU for those 4 s, gives 1200 J again.
    """
    fit = calibrate_profile(GPU, (1200.0, 1e15), seconds=4.0, name="h100ish-measured")
    assert fit.utilisation == pytest.approx(0.25)
    assert fit.max_power_w == pytest.approx(300.0)
    assert fit.idle_power_w == 70.0
    assert fit.name == "h100ish-measured"
    assert "Calibrated" in fit.source
    b = bill(
        1.0,
        device=fit,
        analytics_flop_per_unit_min=1e15 / (4.0 / 60.0),
        dt_min=4.0 / 60.0,
        pue=1.0,
    )
    assert b.num_gpus == 1
    assert b.it_energy_kwh * 3.6e6 == pytest.approx(1200.0)


def test_calibration_from_joules_per_flop_solves_utilisation() -> None:
    """Kept powers: 700 W / (1e15 FLOP/s × 2e-12 J/FLOP) = 0.35 busy share of peak."""
    assert calibrate_profile(GPU, 2e-12).utilisation == pytest.approx(0.35)
    assert calibrate_profile(GPU, (2.0, 1e12)).utilisation == pytest.approx(0.35)
    with pytest.raises(SimcityError, match="J/FLOP"):
        calibrate_profile(GPU, 1e-13)  # would need more than the peak at 700 W
    with pytest.raises(SimcityError, match="peak"):
        calibrate_profile(GPU, (100.0, 1e16), seconds=1.0)  # 1e16 FLOP/s > 1e15 peak
    with pytest.raises(SimcityError):
        calibrate_profile(GPU, -1.0)
