"""Scenario sections for monitoring: sensors, incidents, capacity, compute and reward.

Money is in one currency throughout (call it dollars); rates are per hour or minute as
their names say. Defaults describe a downtown with camera/sensor analytics on GPUs.

Ranges (and why): money per minute at most 1e7 (a major disaster's losses); hazards at most
100 per minute (detection within a second); FLOPs per unit-minute at most 1e21 (ten
thousand H100s per unit), so a step's FLOPs stay finite at any budget and step; a day's
budgets at most 1e9 kg CO2 or 1e10 kWh (a country's data centres).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import Field, ValidationInfo, field_validator, model_validator

from simcity.config.base import (
    ClockTime,
    Count,
    FieldError,
    Frozen,
    Lat,
    Lon,
    Name,
    Real,
    Share,
    resolve_path,
)
from simcity.config.devices import device_profile
from simcity.errors import SimcityError

Money = Annotated[Real, Interval(ge=0, le=1e7)]
"""Money per minute (or per unit of error): 1e7 a minute is a major disaster's losses."""
Hazard = Annotated[Real, Interval(ge=0, le=100)]
"""Events per minute (or hour) per node: 100 is a detection within a second."""
Gain = Annotated[Real, Interval(ge=0, le=1_000)]
"""A dimensionless multiplier."""
Sigma = Annotated[Real, Interval(ge=0, le=5)]
"""A log-spread: exp(5) = 148 times the mean at one sigma is already extreme."""
Minutes = Annotated[Real, Interval(ge=0.1, le=43_200)]
"""A duration from 6 seconds to 30 days."""
Flop = Annotated[Real, Interval(ge=0, le=1e21)]
"""FLOPs per unit-minute: 1e21 is ten thousand H100s busy for one unit."""
Count100 = Annotated[Count, Interval(ge=0, le=100)]


class SensorConfig(Frozen):
    """Installed sensors per node and their reliability."""

    traffic_counters_per_node: Count100 = 2
    air_quality_share: Share = 0.4
    """Share of nodes with one air-quality station (drawn from the scenario seed: the same
    stations every episode of a city)."""
    energy_meters_per_node: Count100 = 1
    mtbf_h: Annotated[Real, Interval(ge=0.01, le=1e6)] = 720.0
    """Mean time between failures: 36 seconds to a century."""
    mttr_h: Annotated[Real, Interval(ge=0.01, le=1e5)] = 8.0
    """Mean time to repair: 36 seconds to a decade."""


class ScheduledIncident(Frozen):
    """An incident the scenario places at a time and place (a planned closure, a drill)."""

    name: Name
    kind: Literal["accident", "pollution", "grid_overload", "scheduled"] = "scheduled"
    lon: Lon
    lat: Lat
    at: ClockTime
    duration_min: Minutes = 60.0
    severity: Annotated[Real, Interval(ge=0, le=100)] = 1.0
    """Severity is about 1 (lognormal mean); 100 times the mean is a catastrophe."""
    damage_per_min: Money = 50.0

    @property
    def at_h(self) -> float:
        hours, minutes = self.at.split(":")
        return int(hours) + int(minutes) / 60


class IncidentConfig(Frozen):
    """Arrival rates, durations, damage and response."""

    accident_per_mveh_km: Annotated[Real, Interval(ge=0, le=10_000)] = 4.0
    """Accidents per million vehicle-km (police-reported and minor, at free flow). Roads
    see about 1-10; up to 10,000 (a crash per 100 vehicle-km) lets a toy town make
    incidents common (the sweep tests use 5,000)."""
    congestion_gain: Annotated[Real, Interval(ge=0, le=100)] = 2.0
    """Accident rate factor ``1 + gain * (v/c)^2``."""
    pollution_per_h: Annotated[Real, Interval(ge=0, le=10)] = 0.02
    """Pollution episodes per node-hour at the reference emissions (10: one every 6 min)."""
    emissions_g_per_veh_km: Annotated[Real, Interval(ge=0, le=10_000)] = 180.0
    """A car emits about 100-300 g/km; a heavy truck about 1,000."""
    reference_emissions_g_h: Annotated[Real, Interval(ge=1, le=1e12)] = 2.0e5
    overload_per_mw_h: Annotated[Real, Interval(ge=0, le=10)] = 0.01
    """Grid overloads per MW of node load per hour at load = feeder capacity."""
    overload_gain: Annotated[Real, Interval(ge=0, le=20)] = 8.0
    """The rate grows ``exp(gain (l - 1))`` to the load ratio cap 1.5, where protection
    trips: at most e^10 (22,000-fold) over the rate at feeder capacity."""
    feeder_margin: Annotated[Real, Interval(ge=0.01, le=100)] = 1.25
    """Feeder capacity over the node's peak load at comfort temperature."""
    hotspot_sigma: Sigma = 0.8
    """Log-spread of each node's fixed risk factor (dangerous junctions, old feeders);
    drawn once per city from the scenario seed, mean 1."""
    history_per_node: Annotated[Real, Interval(ge=0, le=1e6)] = 8.0
    """Incidents a node of mean risk has in the city's records (some years of them); the
    records are Poisson counts at each node's risk factor, fixed per city, and the env
    shows their empirical-Bayes estimate of the factor (feature ``risk_history``).
    0 = no records: the feature is 1 everywhere."""
    severity_sigma: Sigma = 0.5
    """Severity is lognormal with mean 1 and this log-spread."""
    mean_duration_min: tuple[Minutes, Minutes, Minutes] = (45.0, 120.0, 90.0)
    """Mean durations of accidents, pollution episodes and overloads (exponential)."""
    damage_per_min: tuple[Money, Money, Money] = (40.0, 15.0, 60.0)
    """Damage per minute at severity 1 before response, by the same kinds."""
    response_damage_factor: Share = 0.3
    response_duration_factor: Share = 0.5
    accident_capacity_factor: Share = 0.5
    """Capacity left on an accident's link while it is open."""
    scheduled: tuple[ScheduledIncident, ...] = Field(default=(), max_length=10_000)


class MonitoringConfig(Frozen):
    """The monitoring capacity and what a unit of it does."""

    budget_units: Annotated[Real, Interval(ge=0, le=1e6)] = 20.0
    """Capacity per decision interval (streams of GPU analytics, say)."""
    report_per_min: Hazard = 0.004
    """Detection hazard from public reports, with no sensors or monitoring."""
    sensor_per_min: Hazard = 0.005
    """Extra hazard from working sensors' own alarms."""
    unit_per_min: Hazard = 0.2
    """Extra hazard per monitoring unit at the node (times the share of sensors up)."""
    spill: Share = 0.25
    """Neighbours' mean monitoring counts this much at a node."""
    noise_sd: Annotated[Real, Interval(ge=0, le=100)] = 0.25
    """Spread of an unmonitored reading (of normalised quantities)."""
    units_halving_noise: Annotated[Real, Interval(ge=1e-3, le=1e6)] = 1.0
    alarm_snr: Gain = 1.0
    """How far an open incident moves its node's reading of the quantity it disturbs
    (accident and scheduled: congestion; grid overload: load; pollution: emissions), in
    unmonitored reading-noise SDs per unit severity: sub-threshold evidence that the
    operator's anomaly detector (feature ``anomaly``) accumulates; 0 hides incidents."""


class AnalyticsTier(Frozen):
    """One analytics model a monitoring unit may run (``[[compute.tiers]]``).

    A unit of a tier runs its model on one stream bundle: it costs ``flop_per_unit_min``
    and, against a unit of the implicit default tier, detects ``hazard_gain`` times as
    fast and shrinks reading noise as ``noise_gain`` units would."""

    name: Name
    flop_per_unit_min: Annotated[Real, Interval(ge=1, le=1e21)]
    hazard_gain: Gain = 1.0
    """Multiplies a unit's effect on the detection hazard (``unit_per_min``)."""
    noise_gain: Gain = 1.0
    """Multiplies a unit's effect on reading noise (units counted by ``units_halving_noise``)."""


class ComputeConfig(Frozen):
    """Where the analytics and the policy run, and what energy and carbon cost."""

    device: str = Field(default="h100_sxm", min_length=1, max_length=200)
    devices_file: Path | None = None
    policy_device: str | None = Field(default=None, min_length=1, max_length=200)
    """Device the allocation policy runs on (a profile name); None: `device`. A policy
    may say where it really runs (`CityEnv.reset` option ``policy_device``)."""
    analytics_flop_per_unit_min: Flop = 1.15e15
    """16 camera streams x 15 frames/s x 80 GFLOP per frame (a YOLO-class detector)."""
    tiers: tuple[AnalyticsTier, ...] = Field(default=(), max_length=16)
    """Analytics models to choose from per node; none: one implicit tier of
    ``analytics_flop_per_unit_min`` with gains 1 (the env as it always was). With tiers,
    ``[monitoring] budget_units`` counts GPU capacity in units of the first tier: a unit
    of tier t takes ``flop_t / flop_0`` of it (`tier_cost`), and a unit of capacity is
    billed ``flop_0`` per minute (`unit_flop_per_min`)."""
    min_gpus: Annotated[Count, Interval(ge=0, le=1_000_000)] = 0
    """A million GPUs is more than any one fleet."""
    pue: Annotated[Real, Interval(ge=1, le=5)] = 1.2
    price_per_kwh: Annotated[Real, Interval(ge=0, le=100)] = 0.15
    """$/kWh: the worst scarcity prices reach about $10."""
    carbon_price_per_t: Annotated[Real, Interval(ge=0, le=1e5)] = 100.0
    """$/t CO2: estimates of its social cost stay below $2,000."""
    carbon_budget_kg_per_day: Annotated[Real, Interval(ge=0, le=1e9)] | None = None
    """Cap on a day's compute emissions (analytics and policy, facility level, kg CO2);
    None: no cap. Once the day's budget is spent the world refuses further compute: each
    step's allocation is scaled down to what still fits, keeping back what the policy's own
    decisions on the day's remaining steps will emit (`simcity.compute.budget`). The budget
    renews every 24 simulated hours; an episode shorter than a day gets its share in
    proportion to its length (a 6-hour episode: a quarter)."""
    energy_budget_kwh_per_day: Annotated[Real, Interval(ge=0, le=1e10)] | None = None
    """Cap on a day's compute energy (facility kWh), by the same rules; None: no cap."""

    @property
    def num_tiers(self) -> int:
        """T: the analytics tiers a node's units may run (1 without ``tiers``)."""
        return max(len(self.tiers), 1)

    @property
    def unit_flop_per_min(self) -> float:
        """FLOPs per minute of one unit of capacity: the first tier's unit."""
        return self.tiers[0].flop_per_unit_min if self.tiers else self.analytics_flop_per_unit_min

    @property
    def tier_cost(self) -> tuple[float, ...]:
        """(T,) capacity one unit of each tier takes: ``flop_t / flop_0`` (1 for the first)."""
        return tuple(t.flop_per_unit_min / self.unit_flop_per_min for t in self.tiers) or (1.0,)

    @model_validator(mode="after")
    def _known_device(self) -> ComputeConfig:
        for field, name in (("device", self.device), ("policy_device", self.policy_device)):
            if name is None:
                continue
            try:
                device_profile(name, self.devices_file)
            except SimcityError as err:
                if err.file is not None:  # the devices file is at fault: name it and its field
                    raise FieldError("devices_file", str(err)) from None
                raise FieldError(field, f"{err.message} (expected {err.expected})") from None
        return self

    @field_validator("devices_file", mode="before")
    @classmethod
    def _file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(value, info, folder=False)


class RewardConfig(Frozen):
    """Weights that turn the step's physical outcomes into money."""

    carbon_weight: Annotated[Real, Interval(ge=0, le=1e6)] = 1.0
    """Carbon weighed up to a million times its price (Pareto sweeps go to thousands)."""
    estimation_cost: Money = 0.5
    """Money per node and step per unit of mean absolute estimation error."""
    delay_cost_per_veh_h: Money = 0.0
    """Money per vehicle-hour of travel delay that accidents add (the value of travel
    time; `simcity.traffic.delay`). 0 leaves congestion out of the reward but through
    incident rates; the real-city scenarios set a cited value (README, Reward)."""
    scale: Annotated[Real, Interval(ge=1e-12, le=1e3)] = 0.001
    """Reward = -cost x scale (money in thousands by default; info keeps the money)."""
