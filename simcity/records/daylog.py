"""The per-node record of one simulated day, for maps and reports.

T steps, N nodes, L links, I incidents. `DayRecorder.record` reads a `World` after each
step through its read-only `simcity.world.WorldView` (it never changes it), and
`DayRecorder.day_log` collects the episode into a `DayLog`, which `write_day_log` puts in
a run folder, each file atomically:

- ``city.json``: scenario name and title, nodes (id, name, lon, lat, population, jobs)
  and links (tail and head node indices, capacity and, for cities with real streets, an
  optional ``geometry``: each link's [lon, lat] points from tail to head).
- ``day.npz``: per step and node the monitoring units (float32), incident risk
  (expected incidents per hour, float16), true congestion and load over feeder capacity,
  the operator's estimation error (float16); per step and link the v/c ratio (float16).
- ``incidents.csv``: one row per incident of the day, detected or missed.

`read_day_log` reads them back; anything missing or malformed is one `SimcityError`
naming the file and the field.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simcity.city.graph import NODE_NAME
from simcity.errors import SimcityError
from simcity.monitoring.incidents import INCIDENT_TYPES
from simcity.records.files import read_csv_rows, write_atomic, write_atomic_bytes

if TYPE_CHECKING:
    from simcity.world import World

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
_NODE_ARRAYS = ("allocation", "risk_per_h", "congestion", "load_ratio", "estimation_error")


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


def write_day_log(out_dir: Path, day: DayLog) -> None:
    """Write ``city.json``, ``day.npz`` and ``incidents.csv`` into ``out_dir``, atomically."""
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
    write_atomic(out_dir / CITY_FILE, json.dumps(city) + "\n")
    buffer = io.BytesIO()
    arrays = {k: getattr(day, k) for k in ("time_min", "hour_local", *_NODE_ARRAYS, "link_vc")}
    np.savez_compressed(
        buffer,
        seed=np.int64(day.seed),
        dt_min=np.float64(day.dt_min),
        budget_units=np.float64(day.budget_units),
        **arrays,
    )
    write_atomic_bytes(out_dir / DAY_FILE, buffer.getvalue())
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(INCIDENT_COLUMNS)
    rows = zip(*(day.incidents[k].tolist() for k in INCIDENT_COLUMNS), strict=True)
    writer.writerows(["" if v != v else v for v in row] for row in rows)  # NaN: empty cell
    write_atomic(out_dir / INCIDENTS_FILE, text.getvalue())


# --- reading ---------------------------------------------------------------------------

_EXPECTED = "a run folder written by `simcity run --out`"


def _fail(message: str, file: Path, field: str | None = None) -> SimcityError:
    return SimcityError(message, file=file, field=field, expected=_EXPECTED)


def _read_city(path: Path) -> dict[str, Any]:
    try:
        city = json.loads(path.read_text(encoding="utf-8"))
        nodes, links = city["nodes"], city["links"]
        parsed: dict[str, Any] = {
            "scenario": str(city["scenario"]),
            "title": str(city["title"]),
            "node_id": [str(v) for v in nodes["id"]],
            "node_name": [str(v) for v in nodes["name"]],
            **{k: np.asarray(nodes[k], dtype=float) for k in ("lon", "lat", "population", "jobs")},
            "link_tail": np.asarray(links["tail"], dtype=np.int64),
            "link_head": np.asarray(links["head"], dtype=np.int64),
            "capacity_veh_h": np.asarray(links["capacity_veh_h"], dtype=float),
        }
    except FileNotFoundError:
        raise _fail("missing file", path) from None
    except json.JSONDecodeError as err:
        raise _fail(f"not valid JSON: {err}", path) from None
    except KeyError as err:
        raise _fail("missing key", path, str(err.args[0])) from None
    except (TypeError, ValueError) as err:
        raise _fail(f"malformed values: {err}", path) from None
    n = len(parsed["node_id"])
    for key in ("node_name", "lon", "lat", "population", "jobs"):
        if np.shape(parsed[key]) != (n,):
            raise _fail(f"has {len(parsed[key])} entries for {n} nodes", path, f"nodes.{key}")
    num_links = len(parsed["link_tail"])
    for key in ("link_head", "capacity_veh_h"):
        if np.shape(parsed[key]) != (num_links,):
            raise _fail(f"has {len(parsed[key])} entries for {num_links} links", path, key)
    if "geometry" in links:  # optional: run folders from before it, or straight cities
        parsed["link_geometry"] = _read_geometry(links["geometry"], num_links, path)
    ends = np.concatenate([parsed["link_tail"], parsed["link_head"]])
    if n == 0 or (ends.size and (ends.min() < 0 or ends.max() >= n)):
        raise _fail(f"link ends outside the {n} nodes", path, "links")
    return parsed


def _read_geometry(value: Any, num_links: int, path: Path) -> list[np.ndarray]:
    """Each link's (P, 2) lon/lat points; P >= 2, finite, on the globe."""
    if not isinstance(value, list) or len(value) != num_links:
        raise _fail(f"is not a list of {num_links} point lists", path, "links.geometry")
    out = []
    for k, points in enumerate(value):
        try:
            xy = np.asarray(points, dtype=float)
        except (TypeError, ValueError):
            xy = np.zeros((0,))
        ok = xy.ndim == 2 and xy.shape[0] >= 2 and xy.shape[1] == 2 and np.isfinite(xy).all()
        if not ok or np.abs(xy[:, 0]).max() > 180 or np.abs(xy[:, 1]).max() > 90:
            raise _fail("is not >= 2 [lon, lat] points in degrees", path, f"links.geometry[{k}]")
        out.append(xy)
    return out


def _read_day(path: Path, num_nodes: int, num_links: int) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise _fail("missing file", path) from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise _fail(f"not a readable .npz file: {err}", path) from None
    needed = ("seed", "dt_min", "budget_units", "time_min", "hour_local", *_NODE_ARRAYS)
    for key in (*needed, "link_vc"):
        if key not in arrays:
            raise _fail("missing array", path, key)
    t = len(arrays["time_min"])
    shapes = {k: (t, num_nodes) for k in _NODE_ARRAYS} | {"link_vc": (t, num_links)}
    for key, shape in shapes.items():
        if arrays[key].shape != shape:
            raise _fail(f"has shape {arrays[key].shape}, expected {shape}", path, key)
    if t == 0 or arrays["hour_local"].shape != (t,):
        raise _fail("no steps, or step arrays of different lengths", path, "time_min")
    for key, values in arrays.items():
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise _fail("has NaN or infinite values", path, key)
    return {
        "seed": int(arrays.pop("seed")),
        "dt_min": float(arrays.pop("dt_min")),
        "budget_units": float(arrays.pop("budget_units")),
        **arrays,
    }


def _read_incidents(path: Path, num_nodes: int) -> dict[str, np.ndarray]:
    rows = read_csv_rows(path, INCIDENT_COLUMNS, _EXPECTED)
    columns = {k: [row[k] or "" for row in rows] for k in INCIDENT_COLUMNS}
    try:
        table: dict[str, np.ndarray] = {
            "kind": np.asarray(columns["kind"], dtype=str),
            "status": np.asarray(columns["status"], dtype=str),
            "node": np.asarray(columns["node"], dtype=np.int64),
            "link": np.asarray(columns["link"], dtype=np.int64),
        }
        for key in ("start_min", "end_min", "damage", "severity", "detected_min"):
            table[key] = np.array([float(v) if v else np.nan for v in columns[key]], dtype=float)
    except ValueError as err:
        raise _fail(f"malformed value: {err}", path) from None
    if rows and (table["node"].min() < 0 or table["node"].max() >= num_nodes):
        raise _fail(f"node index outside the {num_nodes} nodes", path, "node")
    if not np.isin(table["status"], ["detected", "missed"]).all():
        raise _fail("unknown status", path, "status")
    return table


def read_day_log(run_dir: Path) -> DayLog:
    """The `DayLog` in a run folder; `SimcityError` names any missing or malformed file."""
    if not run_dir.is_dir():
        raise _fail("no such folder", run_dir)
    city = _read_city(run_dir / CITY_FILE)
    n, num_links = len(city["node_id"]), len(city["link_tail"])
    day = _read_day(run_dir / DAY_FILE, n, num_links)
    incidents = _read_incidents(run_dir / INCIDENTS_FILE, n)
    return DayLog(**city, **day, incidents=incidents)
