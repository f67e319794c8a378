"""What a run folder's day files hold: their names, columns and arrays, and `DayLog`.

Shared by the writer (`simcity.records.daylog`) and the reader (`simcity.records.dayread`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CITY_FILE, DAY_FILE, INCIDENTS_FILE = "city.json", "day.npz", "incidents.csv"
INCIDENT_COLUMNS = (
    "kind",
    "node",
    "link",
    "start_min",
    "end_min",
    "detected_min",
    "status",
    "damage",
    "severity",
)
NODE_ARRAYS = ("allocation", "risk_per_h", "congestion", "load_ratio", "estimation_error")


@dataclass(frozen=True)
class DayLog:
    """The city, what happened at every node and link each step, and the incidents."""

    scenario: str
    title: str
    seed: int
    dt_min: float
    budget_units: float
    node_id: list[str]
    node_name: list[str]
    lon: np.ndarray  # (N,)
    lat: np.ndarray  # (N,)
    population: np.ndarray  # (N,)
    jobs: np.ndarray  # (N,)
    link_tail: np.ndarray  # (L,) node index
    link_head: np.ndarray  # (L,)
    capacity_veh_h: np.ndarray  # (L,)
    time_min: np.ndarray  # (T,) start of each step
    hour_local: np.ndarray  # (T,) local hour at the middle of each step
    allocation: np.ndarray  # (T, N) monitoring units
    risk_per_h: np.ndarray  # (T, N) expected incidents per hour
    congestion: np.ndarray  # (T, N) mean v/c of the links into the node
    load_ratio: np.ndarray  # (T, N) electric load over feeder capacity
    estimation_error: np.ndarray  # (T, N) mean absolute error of the operator's estimates
    link_vc: np.ndarray  # (T, L) volume over capacity, incident cuts included
    incidents: dict[str, np.ndarray]  # INCIDENT_COLUMNS, (I,) each
    link_geometry: list[np.ndarray] | None = None  # (L,) of (P, 2) lon/lat, or straight

    @property
    def num_nodes(self) -> int:
        return len(self.node_id)

    @property
    def num_steps(self) -> int:
        return len(self.time_min)

    def hour_at(self, minutes: np.ndarray | float) -> np.ndarray:
        """Local hour (0 to 24) at ``minutes`` after the start of the episode."""
        first = self.hour_local[0] - self.dt_min / 120.0
        return np.asarray((first + np.asarray(minutes) / 60.0) % 24.0)

    @property
    def detected(self) -> np.ndarray:
        """(I,) whether each incident was detected."""
        return np.asarray(self.incidents["status"] == "detected")
