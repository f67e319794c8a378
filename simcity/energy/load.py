"""Node electric demand: daily temperature, land-use load shapes, and EV charging.

Pure functions over NumPy arrays; N nodes. Hours are local wall-clock hours of the day
(`hour_local`, 0 to 24, wrapping), powers are kW, stocks of vehicles are (expected,
fractional) vehicle counts. `step_energy` advances a city's `EnergyState` by one interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from simcity.city.graph import City
from simcity.config.scenario import EnergyConfig, Scenario
from simcity.errors import SimcityError

# Normalised hourly load shapes, value at hour 0, 1, ..., 23 local; rows follow
# `simcity.city.graph.LAND_USES`. Stylised after the shapes of NREL's End-Use Load Profiles
# (ResStock/ComStock, 2021), not fitted: residential has a morning bump (07-09) and its
# peak in the evening (19-20); commercial is a working-day plateau (10-15); industrial is
# high and flat through the day shifts. Each row sums to 24, so its daily mean is exactly 1
# (also under linear interpolation between hours, whose daily mean is the mean of the knots).
_RESIDENTIAL = (
    0.76, 0.68, 0.63, 0.60, 0.60, 0.65, 0.82, 1.05, 1.12, 1.02, 0.95, 0.93,
    0.93, 0.92, 0.92, 0.96, 1.06, 1.25, 1.45, 1.56, 1.56, 1.44, 1.20, 0.94,
)  # fmt: skip
_COMMERCIAL = (
    0.57, 0.57, 0.57, 0.57, 0.57, 0.57, 0.65, 0.90, 1.25, 1.45, 1.50, 1.50,
    1.50, 1.50, 1.50, 1.50, 1.45, 1.30, 1.05, 0.90, 0.78, 0.68, 0.62, 0.55,
)  # fmt: skip
_INDUSTRIAL = (
    0.80, 0.80, 0.80, 0.80, 0.80, 0.80, 0.90, 1.10, 1.20, 1.20, 1.20, 1.20,
    1.20, 1.20, 1.20, 1.20, 1.20, 1.10, 1.05, 0.85, 0.85, 0.85, 0.85, 0.85,
)  # fmt: skip
_MIXED = tuple((r + c) / 2 for r, c in zip(_RESIDENTIAL, _COMMERCIAL, strict=True))
LOAD_PROFILES = np.array([_RESIDENTIAL, _COMMERCIAL, _INDUSTRIAL, _MIXED])  # (4, 24)
"""Hourly load shape per land-use code (rows: residential, commercial, industrial, mixed)."""
LOAD_PROFILES.setflags(write=False)

RESIDENTIAL, COMMERCIAL, INDUSTRIAL, MIXED = range(4)
"""Land-use codes: indices into `simcity.city.graph.LAND_USES`."""


def temperature_c(
    hour_local: np.ndarray | float, mean_c: float, amplitude_c: float, peak_hour: float = 15.0
) -> np.ndarray:
    """Outdoor temperature (°C) over the day: a sinusoid peaking at ``peak_hour`` local.

    ``mean_c + amplitude_c * cos(2π (hour - peak_hour) / 24)``.

    >>> temperature_c(np.array([15.0, 21.0, 3.0]), 20.0, 8.0).round(6).tolist()
    [28.0, 20.0, 12.0]
    """
    _check_finite("mean_c", mean_c)
    _check_at_least("amplitude_c", amplitude_c, 0.0)
    _check_finite("peak_hour", peak_hour)
    phase = 2.0 * np.pi * (np.asarray(hour_local, dtype=np.float64) - peak_hour) / 24.0
    return mean_c + amplitude_c * np.cos(phase)


def load_profile(hour_local: float, land_use_code: np.ndarray) -> np.ndarray:
    """Normalised load (daily mean 1) of each node's land use at ``hour_local``.

    Linear between the hourly values of `LOAD_PROFILES`, wrapping at midnight.
    ``land_use_code`` is an int array (N,) indexing `simcity.city.graph.LAND_USES`.

    >>> load_profile(19.5, np.array([0, 1, 2, 3])).round(6).tolist()
    [1.56, 0.84, 0.85, 1.2]
    """
    codes = _land_use_codes(land_use_code)
    return _profile_at(hour_local)[codes]


def _profile_at(hour_local: float) -> np.ndarray:
    """All four land-use shapes at one hour: (4,)."""
    _check_finite("hour_local", hour_local)
    hour = float(hour_local) % 24.0
    below = math.floor(hour)
    weight = hour - below
    return (1.0 - weight) * LOAD_PROFILES[:, below % 24] + weight * LOAD_PROFILES[
        :, (below + 1) % 24
    ]


def node_load_kw(
    hour_local: float,
    land_use_code: np.ndarray,
    population: np.ndarray,
    jobs: np.ndarray,
    temperature_c: np.ndarray | float,
    *,
    kw_per_resident: float,
    kw_per_job: float,
    comfort_c: float = 21.0,
    cooling_per_deg_c: float = 0.03,
    heating_per_deg_c: float = 0.02,
) -> np.ndarray:
    """Electric load (kW) of each node (N,), before EV charging.

    ``(population * kw_per_resident * residential(h) + jobs * kw_per_job * work(h))
    * (1 + cooling_per_deg_c * max(0, T - comfort_c) + heating_per_deg_c * max(0, comfort_c - T))``

    Residents draw on the residential shape wherever they live; jobs draw on the
    industrial shape at industrial nodes and on the commercial shape elsewhere (the jobs in
    a residential or mixed area are shops, schools and offices). ``kw_per_resident`` and
    ``kw_per_job`` are daily-mean kW, since the shapes have daily mean 1. The temperature
    term is a degree-hour linearisation: each °C of cooling (heating) demand above
    (below) ``comfort_c`` adds that fraction of the load; ``temperature_c`` is one city
    value or one per node (N,).

    >>> node_load_kw(19.0, np.array([0]), np.array([100.0]), np.array([10.0]), 31.0,
    ...              kw_per_resident=1.0, kw_per_job=2.0).round(6).tolist()
    [226.2]
    """
    codes = _land_use_codes(land_use_code)
    _check_array_at_least("population", population, 0.0)
    _check_array_at_least("jobs", jobs, 0.0)
    _check_at_least("kw_per_resident", kw_per_resident, 0.0)
    _check_at_least("kw_per_job", kw_per_job, 0.0)
    _check_finite("comfort_c", comfort_c)
    _check_at_least("cooling_per_deg_c", cooling_per_deg_c, 0.0)
    _check_at_least("heating_per_deg_c", heating_per_deg_c, 0.0)
    temperature = np.asarray(temperature_c, dtype=np.float64)
    if not np.all(np.isfinite(temperature)):
        raise SimcityError(
            "temperature is not finite", field="temperature_c", expected="finite °C values"
        )
    shapes = _profile_at(hour_local)  # (4,)
    work_shape = np.where(codes == INDUSTRIAL, shapes[INDUSTRIAL], shapes[COMMERCIAL])  # (N,)
    base_kw = (
        np.asarray(population, dtype=np.float64) * kw_per_resident * shapes[RESIDENTIAL]
        + np.asarray(jobs, dtype=np.float64) * kw_per_job * work_shape
    )
    weather = (
        1.0
        + cooling_per_deg_c * np.maximum(temperature - comfort_c, 0.0)
        + heating_per_deg_c * np.maximum(comfort_c - temperature, 0.0)
    )
    return base_kw * weather


def step_ev_charging(
    charging_veh: np.ndarray,
    arrivals_veh_h: np.ndarray,
    dt_min: float,
    *,
    ev_share: float,
    charge_duration_h: float,
) -> np.ndarray:
    """Vehicles charging at each node (N,) after ``dt_min`` minutes.

    The stock S follows ``dS/dt = ev_share * arrivals - S / charge_duration_h``: a share
    of the vehicles arriving (veh/h, held constant over the step) plug in, and each
    charges for an exponentially distributed time of mean ``charge_duration_h``. The step
    is the exact solution, ``S e^(-x) + ev_share * arrivals * duration * (1 - e^(-x))``
    with ``x = dt / duration``, so it is stable for any ``dt_min`` and two half steps
    equal one whole step. The steady state is ``ev_share * arrivals * duration``.

    >>> step_ev_charging(np.array([0.0]), np.array([100.0]), 1e9, ev_share=0.1,
    ...                  charge_duration_h=2.0).round(6).tolist()
    [20.0]
    """
    _check_array_at_least("charging_veh", charging_veh, 0.0)
    _check_array_at_least("arrivals_veh_h", arrivals_veh_h, 0.0)
    _check_at_least("dt_min", dt_min, 0.0)
    _check_at_least("ev_share", ev_share, 0.0)
    if ev_share > 1.0:
        raise SimcityError(
            f"ev_share is {ev_share}", field="ev_share", expected="a share between 0 and 1"
        )
    _check_positive("charge_duration_h", charge_duration_h)
    x = dt_min / 60.0 / charge_duration_h
    stay = math.exp(-x)
    plugged_in = -math.expm1(-x)  # 1 - e^(-x), accurate for small steps
    inflow_veh = ev_share * np.asarray(arrivals_veh_h, dtype=np.float64) * charge_duration_h
    return np.asarray(charging_veh, dtype=np.float64) * stay + inflow_veh * plugged_in


def ev_load_kw(charging_veh: np.ndarray, charger_kw: float) -> np.ndarray:
    """Electric load (kW) of the vehicles charging at each node (N,), each at ``charger_kw``.

    >>> ev_load_kw(np.array([0.0, 2.5]), 7.2).tolist()
    [0.0, 18.0]
    """
    _check_array_at_least("charging_veh", charging_veh, 0.0)
    _check_at_least("charger_kw", charger_kw, 0.0)
    return np.asarray(charging_veh, dtype=np.float64) * charger_kw


class EnergyState(NamedTuple):
    """A city's electric demand over the last interval, and the EVs still charging."""

    ev_charging_veh: np.ndarray  # (N,)
    node_load_kw: np.ndarray  # (N,) buildings, EV charging and events
    ev_kw: float  # EV charging, city total
    temperature_c: float


class EnergyInputs(NamedTuple):
    """What an interval's demand depends on besides the city and the scenario."""

    hour_local: float  # at the middle of the interval
    arrivals_veh_h: np.ndarray  # (N,) trips ending at each node
    dt_min: float


def initial_energy(num_nodes: int, temperature_c: float) -> EnergyState:
    """No load and no vehicle charging, before the first interval."""
    zeros = np.zeros(num_nodes)
    zeros.setflags(write=False)
    return EnergyState(zeros, zeros, 0.0, temperature_c)


def step_energy(
    state: EnergyState,
    inputs: EnergyInputs,
    city: City,
    scenario: Scenario,
    event_nodes: Sequence[int],
) -> EnergyState:
    """Node electric load over an interval: buildings by land use and weather, EV
    charging of the arriving trips, and the events under way (at ``event_nodes``)."""
    cfg, weather, hour = scenario.energy, scenario.weather, inputs.hour_local
    temp_c = float(
        temperature_c(hour, weather.temp_mean_c, weather.temp_amplitude_c, weather.temp_peak_hour)
    )
    buildings_kw = node_load_kw(
        hour,
        city.land_use,
        city.population,
        city.jobs,
        temp_c,
        kw_per_resident=cfg.kw_per_resident,
        kw_per_job=cfg.kw_per_job,
        comfort_c=cfg.comfort_c,
        cooling_per_deg_c=cfg.cooling_per_deg_c,
        heating_per_deg_c=cfg.heating_per_deg_c,
    )
    charging_veh = step_ev_charging(
        state.ev_charging_veh,
        inputs.arrivals_veh_h,
        inputs.dt_min,
        ev_share=cfg.ev_share,
        charge_duration_h=cfg.charge_duration_h,
    )
    ev_kw = ev_load_kw(charging_veh, cfg.charger_kw)
    load_kw = buildings_kw + ev_kw
    for event, node in zip(scenario.events, event_nodes, strict=True):
        if event.start_h <= hour < event.end_h:
            load_kw[node] += event.load_kw
    charging_veh.setflags(write=False)
    load_kw.setflags(write=False)
    return EnergyState(charging_veh, load_kw, float(ev_kw.sum()), temp_c)


def feeder_capacity_kw(city: City, scenario: Scenario, event_nodes: Sequence[int]) -> np.ndarray:
    """Each node's feeder capacity (N,): a margin over its peak load at comfort temperature,
    plus the load of the events it hosts (feeders at venues are sized for their events)."""
    event_kw = np.zeros(city.num_nodes)
    for event, node in zip(scenario.events, event_nodes, strict=True):
        event_kw[node] += event.load_kw
    return scenario.incidents.feeder_margin * (
        _peak_comfort_load_kw(city, scenario.energy) + event_kw
    )


def _peak_comfort_load_kw(city: City, cfg: EnergyConfig) -> np.ndarray:
    """Each node's peak building load over the day at comfort temperature (N,)."""
    loads = [
        node_load_kw(
            hour,
            city.land_use,
            city.population,
            city.jobs,
            cfg.comfort_c,
            kw_per_resident=cfg.kw_per_resident,
            kw_per_job=cfg.kw_per_job,
        )
        for hour in np.arange(0.0, 24.0, 0.5)
    ]
    return np.maximum(np.max(loads, axis=0), 1e-3)


def _land_use_codes(land_use_code: np.ndarray) -> np.ndarray:
    codes = np.asarray(land_use_code)
    num_uses = len(LOAD_PROFILES)
    if codes.dtype.kind not in "iu" or np.any((codes < 0) | (codes >= num_uses)):
        raise SimcityError(
            f"land-use codes {np.unique(codes).tolist()}",
            field="land_use_code",
            expected=f"integers 0 to {num_uses - 1} (indices into simcity.city.graph.LAND_USES)",
        )
    return codes


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise SimcityError(f"{name} is {value}", field=name, expected="a finite number")


def _check_at_least(name: str, value: float, low: float) -> None:
    if not (math.isfinite(value) and value >= low):
        raise SimcityError(f"{name} is {value}", field=name, expected=f"a finite number >= {low:g}")


def _check_positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise SimcityError(f"{name} is {value}", field=name, expected="a finite number > 0")


def _check_array_at_least(name: str, values: np.ndarray, low: float) -> None:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array) & (array >= low)):
        raise SimcityError(
            f"{name} has values outside the range", field=name, expected=f"finite values >= {low:g}"
        )
