"""The per-node record of one simulated day, for maps and reports.

T steps, N nodes, L links, I incidents. `DayRecorder.record` reads a `World` after each
step through its read-only `simcity.world.WorldView` (it never changes it), and
`DayRecorder.day_log` collects the episode into a `DayLog`, whose files `day_log_files`
makes for a run folder (`simcity.records.runfolder` writes them):

- ``city.json``: scenario name and title, nodes (id, name, lon, lat, population, jobs)
  and links (tail and head node indices, capacity and, for cities with real streets, an
  optional ``geometry``: each link's [lon, lat] points from tail to head).
- ``day.npz``: per step and node the monitoring units (float32), incident risk
  (expected incidents per hour, float16), true congestion and load over feeder capacity,
  the operator's estimation error (float16); per step and link the v/c ratio (float16).
- ``incidents.csv``: one row per incident of the day, detected or missed.

`read_day_log` reads them back (`simcity.records.dayread`); anything missing, malformed,
out of range or not what the run wrote is one `SimcityError` naming the file and the field.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from simcity.city.graph import NODE_NAME
from simcity.monitoring.incidents import INCIDENT_TYPES
from simcity.records.dayformat import (
    CITY_FILE,
    DAY_FILE,
    INCIDENT_COLUMNS,
    INCIDENTS_FILE,
    NODE_ARRAYS,
    DayLog,
)
from simcity.records.dayread import read_day_log

if TYPE_CHECKING:
    from simcity.world import World


class DayRecorder:
    """Collects a `DayLog` of the latest episode, one `record` call after every step."""

    def __init__(self) -> None:
        self._world: World | None = None
        self._steps: list[dict[str, np.ndarray]] = []

    def record(self, world: World) -> None:
        """Read the step ``world`` has just simulated (a new world starts a new day)."""
        if world is not self._world:
            self._world, self._steps = world, []
        view = world.view
        traffic, state, outcome = view.traffic.snapshot, view.truth, view.outcome
        assert traffic is not None and state is not None and outcome is not None, "after a step"
        accidents = np.bincount(
            view.city.link_head, weights=state.accident_rate_per_h, minlength=view.city.num_nodes
        )
        self._steps.append(
            {
                "time_min": np.array(view.records[-1].time_min),
                "hour_local": np.array(view.records[-1].hour_local),
                "allocation": np.array(view.allocation, dtype=np.float32),
                "risk_per_h": accidents + state.pollution_rate_per_h + state.overload_rate_per_h,
                "congestion": state.quantities[:, 0],
                "load_ratio": state.quantities[:, 1],
                "estimation_error": outcome.error_by_node,
                "link_vc": traffic.assignment.flows_veh_h / traffic.capacity_veh_h,
            }
        )

    def day_log(self, seed: int) -> DayLog:
        """The latest episode's `DayLog` (``seed`` is the one it was reset with)."""
        if self._world is None or not self._steps:
            raise RuntimeError("nothing recorded")
        view = self._world.view
        city, scenario = view.city, view.scenario
        table = view.monitoring.all_incidents()
        detected = table.detected
        incidents = {
            "kind": np.asarray(INCIDENT_TYPES)[table.kind],
            "node": table.node,
            "link": table.link,
            "start_min": table.start_min,
            "end_min": table.end_min,
            "detected_min": table.detected_min,
            "status": np.where(detected, "detected", "missed"),
            "damage": table.damage,
            "severity": table.severity,
        }
        stacked = {k: np.stack([s[k] for s in self._steps]) for k in self._steps[0]}
        return DayLog(
            scenario=scenario.name,
            title=scenario.title,
            seed=seed,
            dt_min=view.dt_min,
            budget_units=scenario.monitoring.budget_units,
            node_id=[str(n) for n in city.node_ids],
            node_name=[str(d[NODE_NAME]) for _, d in city.graph.nodes(data=True)],
            lon=np.asarray(city.lon),
            lat=np.asarray(city.lat),
            population=np.asarray(city.population),
            jobs=np.asarray(city.jobs),
            link_tail=city.link_tail,
            link_head=city.link_head,
            capacity_veh_h=np.asarray(city.capacity_veh_h),
            incidents=incidents,
            link_geometry=None
            if city.link_geometry is None
            else [np.asarray(points, dtype=float) for points in city.link_geometry],
            **{k: _stored(k, v) for k, v in stacked.items()},
        )


def _stored(name: str, values: np.ndarray) -> np.ndarray:
    """The array as kept on disk: units in float32, the rest (colours, tooltips) float16."""
    if name in ("time_min", "hour_local"):
        return values.astype(np.float64)
    if name == "allocation":
        return values.astype(np.float32)
    return np.clip(values, 0.0, np.finfo(np.float16).max).astype(np.float16)


def day_log_files(day: DayLog) -> dict[str, bytes]:
    """``city.json``, ``day.npz`` and ``incidents.csv`` of ``day``, as bytes."""
    city: dict[str, Any] = {
        "scenario": day.scenario,
        "title": day.title,
        "nodes": {
            "id": day.node_id,
            "name": day.node_name,
            "lon": day.lon.tolist(),
            "lat": day.lat.tolist(),
            "population": day.population.tolist(),
            "jobs": day.jobs.tolist(),
        },
        "links": {
            "tail": day.link_tail.tolist(),
            "head": day.link_head.tolist(),
            "capacity_veh_h": day.capacity_veh_h.tolist(),
        },
    }
    if day.link_geometry is not None:
        city["links"]["geometry"] = [np.round(p, 6).tolist() for p in day.link_geometry]
    buffer = io.BytesIO()
    arrays = {k: getattr(day, k) for k in ("time_min", "hour_local", *NODE_ARRAYS, "link_vc")}
    np.savez_compressed(
        buffer,
        seed=np.int64(day.seed),
        dt_min=np.float64(day.dt_min),
        budget_units=np.float64(day.budget_units),
        **arrays,
    )
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(INCIDENT_COLUMNS)
    rows = zip(*(day.incidents[k].tolist() for k in INCIDENT_COLUMNS), strict=True)
    writer.writerows(["" if v != v else v for v in row] for row in rows)  # NaN: empty cell
    return {
        CITY_FILE: (json.dumps(city) + "\n").encode("utf-8"),
        DAY_FILE: buffer.getvalue(),
        INCIDENTS_FILE: text.getvalue().encode("utf-8"),
    }


__all__ = [
    "CITY_FILE",
    "DAY_FILE",
    "INCIDENTS_FILE",
    "INCIDENT_COLUMNS",
    "NODE_ARRAYS",
    "DayLog",
    "DayRecorder",
    "day_log_files",
    "read_day_log",
]
