"""Scenario sections for monitoring: sensors, incidents, capacity, compute and reward.

Money is in one currency throughout (call it dollars); rates are per hour or minute as
their names say. Defaults describe a downtown with camera/sensor analytics on GPUs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from simcity.config.base import Frozen, NonNegative, Positive, Share, resolve_path
from simcity.config.devices import device_profile
from simcity.errors import SimcityError


class SensorConfig(Frozen):
    """Installed sensors per node and their reliability."""

    traffic_counters_per_node: Annotated[int, Field(ge=0, le=100)] = 2
    air_quality_share: Share = 0.4
    """Share of nodes with one air-quality station (seeded choice)."""
    energy_meters_per_node: Annotated[int, Field(ge=0, le=100)] = 1
    mtbf_h: Positive = 720.0
    mttr_h: Positive = 8.0


class ScheduledIncident(Frozen):
    """An incident the scenario places at a time and place (a planned closure, a drill)."""

    name: str
    kind: Literal["accident", "pollution", "grid_overload", "scheduled"] = "scheduled"
    lon: Annotated[float, Field(ge=-180, le=180)]
    lat: Annotated[float, Field(ge=-90, le=90)]
    at: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
    duration_min: Positive = 60.0
    severity: NonNegative = 1.0
    damage_per_min: NonNegative = 50.0

    @property
    def at_h(self) -> float:
        hours, minutes = self.at.split(":")
        return int(hours) + int(minutes) / 60


class IncidentConfig(Frozen):
    """Arrival rates, durations, damage and response."""

    accident_per_mveh_km: NonNegative = 4.0
    """Accidents per million vehicle-km (police-reported and minor, at free flow)."""
    congestion_gain: NonNegative = 2.0
    """Accident rate factor ``1 + gain * (v/c)^2``."""
    pollution_per_h: NonNegative = 0.02
    """Pollution episodes per node-hour at the reference emissions."""
    emissions_g_per_veh_km: NonNegative = 180.0
    reference_emissions_g_h: Positive = 2.0e5
    overload_per_mw_h: NonNegative = 0.01
    """Grid overloads per MW of node load per hour at load = feeder capacity."""
    overload_gain: NonNegative = 8.0
    feeder_margin: Positive = 1.25
    """Feeder capacity over the node's peak load at comfort temperature."""
    hotspot_sigma: NonNegative = 0.8
    """Log-spread of each node's fixed risk factor (dangerous junctions, old feeders);
    drawn once per city from the scenario seed, mean 1."""
    history_per_node: NonNegative = 8.0
    """Incidents a node of mean risk has in the city's records (some years of them); the
    records are Poisson counts at each node's risk factor, fixed per city, and the env
    shows their empirical-Bayes estimate of the factor (feature ``risk_history``).
    0 = no records: the feature is 1 everywhere."""
    severity_sigma: NonNegative = 0.5
    """Severity is lognormal with mean 1 and this log-spread."""
    mean_duration_min: tuple[Positive, Positive, Positive] = (45.0, 120.0, 90.0)
    """Mean durations of accidents, pollution episodes and overloads (exponential)."""
    damage_per_min: tuple[NonNegative, NonNegative, NonNegative] = (40.0, 15.0, 60.0)
    """Damage per minute at severity 1 before response, by the same kinds."""
    response_damage_factor: Share = 0.3
    response_duration_factor: Share = 0.5
    accident_capacity_factor: Share = 0.5
    """Capacity left on an accident's link while it is open."""
    scheduled: tuple[ScheduledIncident, ...] = ()


class MonitoringConfig(Frozen):
    """The monitoring capacity and what a unit of it does."""

    budget_units: NonNegative = 20.0
    """Capacity per decision interval (streams of GPU analytics, say)."""
    report_per_min: NonNegative = 0.004
    """Detection hazard from public reports, with no sensors or monitoring."""
    sensor_per_min: NonNegative = 0.005
    """Extra hazard from working sensors' own alarms."""
    unit_per_min: NonNegative = 0.2
    """Extra hazard per monitoring unit at the node (times the share of sensors up)."""
    spill: Share = 0.25
    """Neighbours' mean monitoring counts this much at a node."""
    noise_sd: NonNegative = 0.25
    """Spread of an unmonitored reading (of normalised quantities)."""
    units_halving_noise: Positive = 1.0
    alarm_snr: NonNegative = 1.0
    """How far an open incident moves its node's reading of the quantity it disturbs
    (accident and scheduled: congestion; grid overload: load; pollution: emissions), in
    unmonitored reading-noise SDs per unit severity: sub-threshold evidence that the
    operator's anomaly detector (feature ``anomaly``) accumulates; 0 hides incidents."""


class AnalyticsTier(Frozen):
    """One analytics model a monitoring unit may run (``[[compute.tiers]]``).

    A unit of a tier runs its model on one stream bundle: it costs ``flop_per_unit_min``
    and, against a unit of the implicit default tier, detects ``hazard_gain`` times as
    fast and shrinks reading noise as ``noise_gain`` units would."""

    name: str
    flop_per_unit_min: Positive
    hazard_gain: NonNegative = 1.0
    """Multiplies a unit's effect on the detection hazard (``unit_per_min``)."""
    noise_gain: NonNegative = 1.0
    """Multiplies a unit's effect on reading noise (units counted by ``units_halving_noise``)."""


class ComputeConfig(Frozen):
    """Where the analytics and the policy run, and what energy and carbon cost."""

    device: str = "h100_sxm"
    devices_file: Path | None = None
    policy_device: str | None = None
    """Device the allocation policy runs on (a profile name); None: `device`. A policy
    may say where it really runs (`CityEnv.reset` option ``policy_device``)."""
    analytics_flop_per_unit_min: NonNegative = 1.15e15
    """16 camera streams x 15 frames/s x 80 GFLOP per frame (a YOLO-class detector)."""
    tiers: tuple[AnalyticsTier, ...] = ()
    """Analytics models to choose from per node; none: one implicit tier of
    ``analytics_flop_per_unit_min`` with gains 1 (the env as it always was). With tiers,
    ``[monitoring] budget_units`` counts GPU capacity in units of the first tier: a unit
    of tier t takes ``flop_t / flop_0`` of it (`tier_cost`), and a unit of capacity is
    billed ``flop_0`` per minute (`unit_flop_per_min`)."""
    min_gpus: Annotated[int, Field(ge=0)] = 0
    pue: Annotated[float, Field(ge=1, le=5)] = 1.2
    price_per_kwh: NonNegative = 0.15
    carbon_price_per_t: NonNegative = 100.0
    carbon_budget_kg_per_day: NonNegative | None = None
    """Cap on a day's compute emissions (analytics and policy, facility level, kg CO2);
    None: no cap. Once the day's budget is spent the world refuses further compute: each
    step's allocation is scaled down to what still fits, keeping back what the policy's own
    decisions on the day's remaining steps will emit (`simcity.compute.budget`). The budget
    renews every 24 simulated hours; an episode shorter than a day gets its share in
    proportion to its length (a 6-hour episode: a quarter)."""
    energy_budget_kwh_per_day: NonNegative | None = None
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
        for name in (self.device, self.policy_device):
            if name is None:
                continue
            try:
                device_profile(name, self.devices_file)
            except SimcityError as err:
                raise ValueError(
                    f"device {name!r}: {err.message} (expected {err.expected})"
                ) from None
        return self

    @field_validator("devices_file", mode="before")
    @classmethod
    def _file(cls, value: Any, info: ValidationInfo) -> Path | None:
        return None if value is None else resolve_path(str(value), info, folder=False)


class RewardConfig(Frozen):
    """Weights that turn the step's physical outcomes into money."""

    carbon_weight: NonNegative = 1.0
    estimation_cost: NonNegative = 0.5
    """Money per node and step per unit of mean absolute estimation error."""
    scale: Positive = 0.001
    """Reward = -cost x scale (money in thousands by default; info keeps the money)."""
