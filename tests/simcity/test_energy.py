"""Node electric demand: hand-computed loads, profile shapes, EV charging dynamics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simcity.city.graph import LAND_USES
from simcity.energy.load import (
    COMMERCIAL,
    INDUSTRIAL,
    LOAD_PROFILES,
    MIXED,
    RESIDENTIAL,
    ev_load_kw,
    load_profile,
    node_load_kw,
    step_ev_charging,
    temperature_c,
)
from simcity.errors import SimcityError

ALL_USES = np.array([RESIDENTIAL, COMMERCIAL, INDUSTRIAL, MIXED])
FINE_HOURS = np.arange(0.0, 24.0, 1.0 / 60.0)  # every minute of a day


def day_of_profiles() -> np.ndarray:
    return np.array([load_profile(h, ALL_USES) for h in FINE_HOURS])  # (1440, 4)


# --- load by hand ----------------------------------------------------------------------


def test_one_residential_node_by_hand() -> None:
    """08:00, 5 °C: residents 200 x 0.5 kW x 1.12, jobs 50 x 1.5 kW x 1.25 (commercial).

    Base 112 + 93.75 = 205.75 kW; 16 °C below comfort adds 16 x 2 % = 32 %: 271.59 kW.
    """
    load = node_load_kw(
        8.0, np.array([0]), np.array([200.0]), np.array([50.0]), 5.0,
        kw_per_resident=0.5, kw_per_job=1.5,
    )  # fmt: skip
    assert load.tolist() == pytest.approx([271.59], abs=1e-9)


def test_one_industrial_node_between_hours_at_comfort() -> None:
    """12:30, 21 °C: residents 40 x 1 kW x (0.93 + 0.92) / 2, jobs 100 x 3 kW x 1.2.

    37 + 360 = 397 kW, no weather term at the comfort temperature.
    """
    load = node_load_kw(
        12.5, np.array([2]), np.array([40.0]), np.array([100.0]), 21.0,
        kw_per_resident=1.0, kw_per_job=3.0,
    )  # fmt: skip
    assert load.tolist() == pytest.approx([397.0], abs=1e-9)


def test_each_land_use_by_hand_when_hot() -> None:
    """14:00, 26 °C (5 °C of cooling: +15 %). Shapes at 14:00: res 0.92, com 1.5, ind 1.2.

    residential 100 residents -> 92 x 1.15 = 105.8; commercial 100 jobs -> 150 x 1.15 = 172.5;
    industrial 100 jobs -> 120 x 1.15 = 138; mixed 100 + 100 -> 242 x 1.15 = 278.3.
    """
    load = node_load_kw(
        14.0, ALL_USES, np.array([100.0, 0.0, 0.0, 100.0]), np.array([0.0, 100.0, 100.0, 100.0]),
        26.0, kw_per_resident=1.0, kw_per_job=1.0,
    )  # fmt: skip
    np.testing.assert_allclose(load, [105.8, 172.5, 138.0, 278.3], rtol=1e-12)


def test_temperature_per_node_and_custom_sensitivity() -> None:
    """Two residential nodes, 10 residents x 1 kW x 1.56 at 19:00 = 15.6 kW each.

    Node 0 at 30 °C with comfort 20 and 5 %/°C cooling: x 1.5 = 23.4.
    Node 1 at 0 °C with 1 %/°C heating: x 1.2 = 18.72.
    """
    load = node_load_kw(
        19.0, np.array([0, 0]), np.array([10.0, 10.0]), np.zeros(2), np.array([30.0, 0.0]),
        kw_per_resident=1.0, kw_per_job=0.0, comfort_c=20.0,
        cooling_per_deg_c=0.05, heating_per_deg_c=0.01,
    )  # fmt: skip
    np.testing.assert_allclose(load, [23.4, 18.72], rtol=1e-12)


# --- shapes ----------------------------------------------------------------------------


def test_profiles_follow_graph_land_uses() -> None:
    assert len(LAND_USES) == len(LOAD_PROFILES) == 4
    assert [LAND_USES[c] for c in ALL_USES] == ["residential", "commercial", "industrial", "mixed"]


def test_profile_daily_means_are_one() -> None:
    np.testing.assert_allclose(day_of_profiles().mean(axis=0), 1.0, atol=1e-12)
    np.testing.assert_allclose(LOAD_PROFILES.sum(axis=1), 24.0, atol=1e-12)


def test_profile_shapes() -> None:
    day = day_of_profiles()
    res, com, ind, mixed = day.T
    peak_hour = FINE_HOURS[np.argmax(day, axis=0)]
    assert 19.0 <= peak_hour[RESIDENTIAL] <= 20.0
    # Residential morning bump: 08:00 is above both the small hours and early afternoon.
    at = {h: load_profile(h, np.array([RESIDENTIAL]))[0] for h in (4.0, 8.0, 13.0)}
    assert at[8.0] > at[13.0] > at[4.0]
    assert 9.0 <= peak_hour[COMMERCIAL] <= 17.0
    assert com[FINE_HOURS == 12.0][0] > 2 * com[FINE_HOURS == 3.0][0]
    # Industrial: higher by day than by night, but flat-ish.
    assert ind[FINE_HOURS == 12.0][0] > ind[FINE_HOURS == 2.0][0]
    assert ind.max() / ind.min() < 1.6
    np.testing.assert_allclose(mixed, (res + com) / 2, rtol=1e-12)


def test_profile_wraps_at_midnight() -> None:
    codes = ALL_USES
    np.testing.assert_allclose(load_profile(23.5, codes), load_profile(-0.5, codes))
    np.testing.assert_allclose(load_profile(24.0 + 7.25, codes), load_profile(7.25, codes))
    # Between 23:00 and 00:00 the residential shape goes from 0.94 towards 0.76.
    assert load_profile(23.5, np.array([RESIDENTIAL]))[0] == pytest.approx(0.85)


def test_temperature_curve() -> None:
    hours = np.arange(0.0, 24.0, 0.5)
    temp = temperature_c(hours, 18.0, 6.0, peak_hour=15.0)
    assert hours[np.argmax(temp)] == 15.0 and temp.max() == pytest.approx(24.0)
    assert hours[np.argmin(temp)] == 3.0 and temp.min() == pytest.approx(12.0)
    assert temp.mean() == pytest.approx(18.0)
    assert temperature_c(9.0, 18.0, 6.0) == pytest.approx(18.0)


# --- EV charging -----------------------------------------------------------------------


def test_ev_step_by_hand() -> None:
    """S0 = 10, 60 arrivals/h, 20 % EVs, 2 h charges, a 120-min step (x = 1).

    Steady state 0.2 x 60 x 2 = 24; S1 = 24 - (24 - 10) e^-1 = 18.849688.
    """
    next_veh = step_ev_charging(
        np.array([10.0]), np.array([60.0]), 120.0, ev_share=0.2, charge_duration_h=2.0
    )
    assert next_veh[0] == pytest.approx(18.849688, abs=1e-6)


def test_ev_steady_state() -> None:
    arrivals_veh_h = np.array([0.0, 30.0, 200.0])
    charging = np.zeros(3)
    for _ in range(400):  # 100 h of 15-min steps, 50 mean durations
        charging = step_ev_charging(
            charging, arrivals_veh_h, 15.0, ev_share=0.25, charge_duration_h=2.0
        )
    np.testing.assert_allclose(charging, [0.0, 15.0, 100.0], rtol=1e-12)
    # A stock at steady state stays there.
    again = step_ev_charging(charging, arrivals_veh_h, 15.0, ev_share=0.25, charge_duration_h=2.0)
    np.testing.assert_allclose(again, charging, rtol=1e-12)


@pytest.mark.parametrize("dt_min", [0.01, 1.0, 15.0, 60.0, 1440.0])
def test_ev_two_half_steps_equal_one_step(dt_min: float) -> None:
    charging = np.array([0.0, 5.0, 40.0])
    arrivals_veh_h = np.array([100.0, 0.0, 12.0])
    kwargs = {"ev_share": 0.3, "charge_duration_h": 1.5}
    whole = step_ev_charging(charging, arrivals_veh_h, dt_min, **kwargs)
    half = step_ev_charging(charging, arrivals_veh_h, dt_min / 2, **kwargs)
    halves = step_ev_charging(half, arrivals_veh_h, dt_min / 2, **kwargs)
    np.testing.assert_allclose(halves, whole, rtol=1e-12, atol=1e-12)


def test_ev_huge_step_is_stable() -> None:
    charging = step_ev_charging(
        np.array([1e6]), np.array([10.0]), 1e12, ev_share=0.5, charge_duration_h=0.1
    )
    assert charging.tolist() == [pytest.approx(0.5)]
    unchanged = step_ev_charging(
        np.array([3.0]), np.array([10.0]), 0.0, ev_share=0.5, charge_duration_h=0.1
    )
    assert unchanged.tolist() == [3.0]


def test_ev_load() -> None:
    np.testing.assert_allclose(ev_load_kw(np.array([0.0, 4.0, 2.5]), 11.0), [0.0, 44.0, 27.5])


# --- bad parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("ev_share", {"ev_share": -0.1}),
        ("ev_share", {"ev_share": 1.5}),
        ("ev_share", {"ev_share": float("nan")}),
        ("charge_duration_h", {"charge_duration_h": 0.0}),
        ("charge_duration_h", {"charge_duration_h": -2.0}),
        ("charge_duration_h", {"charge_duration_h": float("inf")}),
        ("dt_min", {"dt_min": -15.0}),
        ("arrivals_veh_h", {"arrivals_veh_h": np.array([-1.0])}),
        ("charging_veh", {"charging_veh": np.array([np.nan])}),
    ],
)
def test_ev_rejects_bad_parameters(field: str, kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "charging_veh": np.array([1.0]),
        "arrivals_veh_h": np.array([1.0]),
        "dt_min": 15.0,
        "ev_share": 0.2,
        "charge_duration_h": 2.0,
    }
    args.update(kwargs)
    with pytest.raises(SimcityError) as info:
        step_ev_charging(**args)
    assert info.value.field == field


def test_ev_load_rejects_negative_charger() -> None:
    with pytest.raises(SimcityError) as info:
        ev_load_kw(np.array([1.0]), -7.0)
    assert info.value.field == "charger_kw"


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("kw_per_resident", {"kw_per_resident": -1.0}),
        ("kw_per_job", {"kw_per_job": float("nan")}),
        ("cooling_per_deg_c", {"cooling_per_deg_c": -0.01}),
        ("heating_per_deg_c", {"heating_per_deg_c": -0.01}),
        ("comfort_c", {"comfort_c": float("inf")}),
        ("land_use_code", {"land_use_code": np.array([4])}),
        ("land_use_code", {"land_use_code": np.array([-1])}),
        ("land_use_code", {"land_use_code": np.array([0.5])}),
        ("population", {"population": np.array([-3.0])}),
        ("jobs", {"jobs": np.array([np.inf])}),
        ("temperature_c", {"temperature_c": np.nan}),
        ("hour_local", {"hour_local": np.nan}),
    ],
)
def test_node_load_rejects_bad_parameters(field: str, change: dict[str, Any]) -> None:
    args: dict[str, Any] = {
        "hour_local": 12.0,
        "land_use_code": np.array([0]),
        "population": np.array([1.0]),
        "jobs": np.array([1.0]),
        "temperature_c": 20.0,
        "kw_per_resident": 1.0,
        "kw_per_job": 1.0,
    }
    args.update(change)
    with pytest.raises(SimcityError) as info:
        node_load_kw(**args)
    assert info.value.field == field


def test_temperature_rejects_negative_amplitude() -> None:
    with pytest.raises(SimcityError) as info:
        temperature_c(12.0, 20.0, -3.0)
    assert info.value.field == "amplitude_c"


# --- properties ------------------------------------------------------------------------

N = 6
counts = arrays(np.float64, N, elements=st.floats(0.0, 1e6))
rates = st.floats(0.0, 10.0)


@given(
    hour=st.floats(-48.0, 48.0),
    codes=arrays(np.int64, N, elements=st.integers(0, 3)),
    population=counts,
    jobs=counts,
    temperature=arrays(np.float64, N, elements=st.floats(-50.0, 55.0)),
    kw_per_resident=rates,
    kw_per_job=rates,
    cooling=st.floats(0.0, 0.2),
    heating=st.floats(0.0, 0.2),
)
def test_node_load_is_finite_and_nonnegative(
    hour: float,
    codes: np.ndarray,
    population: np.ndarray,
    jobs: np.ndarray,
    temperature: np.ndarray,
    kw_per_resident: float,
    kw_per_job: float,
    cooling: float,
    heating: float,
) -> None:
    load = node_load_kw(
        hour, codes, population, jobs, temperature,
        kw_per_resident=kw_per_resident, kw_per_job=kw_per_job,
        cooling_per_deg_c=cooling, heating_per_deg_c=heating,
    )  # fmt: skip
    assert load.shape == (N,)
    assert np.all(np.isfinite(load)) and np.all(load >= 0)


@given(
    charging=counts,
    arrivals=counts,
    dt_min=st.floats(0.0, 1e7),
    ev_share=st.floats(0.0, 1.0),
    duration_h=st.floats(1e-3, 1e3),
    charger_kw=st.floats(0.0, 350.0),
)
def test_ev_stock_is_finite_nonnegative_and_relaxes_monotonically(
    charging: np.ndarray,
    arrivals: np.ndarray,
    dt_min: float,
    ev_share: float,
    duration_h: float,
    charger_kw: float,
) -> None:
    next_veh = step_ev_charging(
        charging, arrivals, dt_min, ev_share=ev_share, charge_duration_h=duration_h
    )
    assert np.all(np.isfinite(next_veh)) and np.all(next_veh >= 0)
    # The stock moves from where it was towards the steady state, never past it.
    steady = ev_share * arrivals * duration_h
    tol = 1e-9 * (1.0 + np.maximum(charging, steady))
    assert np.all(next_veh >= np.minimum(charging, steady) - tol)
    assert np.all(next_veh <= np.maximum(charging, steady) + tol)
    load = ev_load_kw(next_veh, charger_kw)
    assert np.all(np.isfinite(load)) and np.all(load >= 0)
