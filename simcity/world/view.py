"""`WorldView`: the world after its last interval, read-only, for privileged readers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simcity.city.graph import City
from simcity.config.scenario import Scenario
from simcity.energy.load import EnergyState
from simcity.monitoring.monitor import MonitoringState, StepOutcome
from simcity.monitoring.truth import TrueState
from simcity.traffic.day import TrafficState
from simcity.world.record import StepRecord


@dataclass(frozen=True)
class WorldView:
    """The world after its last interval, read-only: what privileged readers may see.

    A view never changes: the world's states are new values every interval, and every
    array here is read-only.
    """

    city: City
    scenario: Scenario
    step_index: int
    now_min: float
    dt_min: float
    num_steps: int
    allocation: np.ndarray  # (N,) units of the last interval (none before the first)
    capacity_factor: np.ndarray  # (L,) external capacity cuts
    feeder_kw: np.ndarray  # (N,) feeder capacity
    carbon_g_per_kwh: np.ndarray  # (T,) the city's grid at each interval's midpoint
    datacentre_g_per_kwh: np.ndarray  # (T,) the data centre's grid
    traffic: TrafficState
    energy: EnergyState
    monitoring: MonitoringState
    truth: TrueState | None  # the last interval's true quantities and incident rates
    outcome: StepOutcome | None  # what monitoring did in it
    records: tuple[StepRecord, ...]
    compute_budget_left: float = 1.0
    """Share left of the day's compute budget (`simcity.compute.budget.budget_left_share`)
    for the next step; 1 without a budget."""

    def hour_local(self, minutes: float) -> float:
        """Local hour (0 to 24) at ``minutes`` after the start of the episode."""
        return (self.scenario.time.start_hour + minutes / 60.0) % 24.0
