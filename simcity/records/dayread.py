"""Reading a run folder's day back (`read_day_log`), validated like a scenario file.

Every file is read through `simcity.safe_io` (``day.npz`` from its bytes, no pickles), its
values checked for type, shape, finiteness and range, the files checked against each other
(link ends and incident nodes inside the city, steps of ``dt_min``) and against the run's
manifest (`simcity.records.runfolder`). Anything wrong is one `SimcityError` naming the
file and the field, so a tampered or truncated folder is refused, never drawn.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from simcity.errors import SimcityError
from simcity.monitoring.incidents import INCIDENT_TYPES
from simcity.records.dayformat import (
    CITY_FILE,
    DAY_FILE,
    INCIDENT_COLUMNS,
    INCIDENTS_FILE,
    NODE_ARRAYS,
    DayLog,
)
from simcity.records.files import csv_rows
from simcity.records.runfolder import EXPECTED, fail, read_run_file, verify_run_file
from simcity.safe_io import MIB, decode_utf8, excerpt

MAX_NODES = 1_000_000
MAX_LINKS = 10_000_000
MAX_NAME_CHARS = 10_000
MAX_DT_MIN = 24 * 60.0
MAX_DAY_BYTES = 2048 * MIB
"""Uncompressed ``day.npz`` ceiling (a zip bomb is refused before it is inflated)."""
_REAL_KINDS = "fiu"


def parse_json(data: bytes, path: Path) -> Any:
    """JSON from a run folder's bytes; `SimcityError` when it is not."""
    try:
        return json.loads(decode_utf8(data, file=path, expected=EXPECTED))
    except json.JSONDecodeError as err:
        raise fail(f"not valid JSON: {err}", path) from None
    except RecursionError:
        raise fail("not valid JSON: nested too deeply", path) from None


def real_array(values: Any, path: Path, field: str) -> np.ndarray:
    """A JSON list of real numbers (no booleans, strings or nulls) as floats, all finite."""
    if not isinstance(values, list):
        raise fail("is not a list of numbers", path, field)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise fail("holds a value that is not a number", path, field)
    try:
        array = np.array([float(v) for v in values], dtype=np.float64)
    except OverflowError:
        raise fail("holds a number too large", path, field) from None
    if not np.isfinite(array).all():
        raise fail("holds NaN or infinite values", path, field)
    return array


def _in_range(array: np.ndarray, lo: float, hi: float, path: Path, field: str) -> None:
    if array.size and (array.min() < lo or array.max() > hi):
        raise fail(f"holds values outside [{lo:g}, {hi:g}]", path, field)


def _strings(values: Any, path: Path, field: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise fail("is not a list of strings", path, field)
    if any(len(v) > MAX_NAME_CHARS for v in values):
        raise fail(f"holds a string longer than {MAX_NAME_CHARS:,} characters", path, field)
    return values


def _indices(values: Any, lo: int, hi: int, path: Path, field: str) -> np.ndarray:
    if not isinstance(values, list) or not all(
        type(v) is int
        for v in values  # no bools, no floats
    ):
        raise fail("is not a list of whole numbers", path, field)
    if any(v < lo or v >= hi for v in values):
        raise fail(f"holds an index outside [{lo}, {hi})", path, field)
    return np.array(values, dtype=np.int64)


def _read_city(path: Path, data: bytes) -> dict[str, Any]:
    city = parse_json(data, path)
    if not isinstance(city, dict):
        raise fail("is not a JSON object", path)
    for key in ("nodes", "links", "scenario", "title"):
        if key not in city:
            raise fail("missing key", path, key)
    for key in ("scenario", "title"):
        if not isinstance(city[key], str) or len(city[key]) > MAX_NAME_CHARS:
            raise fail("is not a string", path, key)
    nodes, links = city["nodes"], city["links"]
    for name, table, keys in (
        ("nodes", nodes, ("id", "name", "lon", "lat", "population", "jobs")),
        ("links", links, ("tail", "head", "capacity_veh_h")),
    ):
        if not isinstance(table, dict):
            raise fail("is not a JSON object", path, name)
        for key in keys:
            if key not in table:
                raise fail("missing key", path, f"{name}.{key}")
    node_id = _strings(nodes["id"], path, "nodes.id")
    n = len(node_id)
    if not 1 <= n <= MAX_NODES:
        raise fail(f"has {n} nodes", path, "nodes.id")
    parsed: dict[str, Any] = {
        "scenario": city["scenario"],
        "title": city["title"],
        "node_id": node_id,
        "node_name": _strings(nodes["name"], path, "nodes.name"),
    }
    for key in ("lon", "lat", "population", "jobs"):
        parsed[key] = real_array(nodes[key], path, f"nodes.{key}")
    for key in ("node_name", "lon", "lat", "population", "jobs"):
        if len(parsed[key]) != n:
            raise fail(f"has {len(parsed[key])} entries for {n} nodes", path, f"nodes.{key}")
    _in_range(parsed["lon"], -180.0, 180.0, path, "nodes.lon")
    _in_range(parsed["lat"], -90.0, 90.0, path, "nodes.lat")
    for key in ("population", "jobs"):
        _in_range(parsed[key], 0.0, 1e12, path, f"nodes.{key}")
    if not isinstance(links["tail"], list) or len(links["tail"]) > MAX_LINKS:
        raise fail(f"is not a list of at most {MAX_LINKS:,} links", path, "links.tail")
    parsed["link_tail"] = _indices(links["tail"], 0, n, path, "links.tail")
    parsed["link_head"] = _indices(links["head"], 0, n, path, "links.head")
    parsed["capacity_veh_h"] = real_array(links["capacity_veh_h"], path, "links.capacity_veh_h")
    num_links = len(parsed["link_tail"])
    for key in ("link_head", "capacity_veh_h"):
        if len(parsed[key]) != num_links:
            field = "links." + key.removeprefix("link_")
            raise fail(f"has {len(parsed[key])} entries for {num_links} links", path, field)
    _in_range(parsed["capacity_veh_h"], 0.0, 1e12, path, "links.capacity_veh_h")
    if "geometry" in links:  # optional: run folders from before it, or straight cities
        parsed["link_geometry"] = _read_geometry(links["geometry"], num_links, path)
    return parsed


def _read_geometry(value: Any, num_links: int, path: Path) -> list[np.ndarray]:
    """Each link's (P, 2) lon/lat points; P >= 2, finite, on the globe."""
    if not isinstance(value, list) or len(value) != num_links:
        raise fail(f"is not a list of {num_links} point lists", path, "links.geometry")
    out = []
    for k, points in enumerate(value):
        try:
            xy = np.asarray(points, dtype=float)
        except (TypeError, ValueError, OverflowError):
            xy = np.zeros((0,))
        ok = xy.ndim == 2 and xy.shape[0] >= 2 and xy.shape[1] == 2 and np.isfinite(xy).all()
        if not ok or np.abs(xy[:, 0]).max() > 180 or np.abs(xy[:, 1]).max() > 90:
            raise fail("is not >= 2 [lon, lat] points in degrees", path, f"links.geometry[{k}]")
        out.append(xy)
    return out


def load_npz(data: bytes, path: Path, max_bytes: int = MAX_DAY_BYTES) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file's bytes: no pickles, sizes checked before inflating."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > max_bytes:
                raise fail(f"inflates to more than {max_bytes:,} bytes", path)
            arrays: dict[str, np.ndarray] = {}
            for member in members:
                if not member.filename.endswith(".npy"):
                    raise fail(f"holds {excerpt(member.filename)}, not an array", path)
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"npy format version {version}")
                    name = member.filename.removesuffix(".npy")
                    if dtype.hasobject or dtype.kind not in _REAL_KINDS + "b":
                        raise fail(f"holds {dtype} values, not real numbers", path, name)
                    size = math.prod(shape) * dtype.itemsize
                    if size > member.file_size:
                        raise fail("is truncated", path, name)
                with archive.open(member) as f:
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
    except SimcityError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise fail(f"not a readable .npz file: {type(err).__name__}", path) from None
    return arrays


def _scalar(arrays: dict[str, np.ndarray], key: str, kinds: str, path: Path) -> float:
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in kinds:
        raise fail(f"is {value.dtype} of shape {value.shape}, not one number", path, key)
    number = float(value)
    if not math.isfinite(number):
        raise fail("is NaN or infinite", path, key)
    return number


def _read_day(path: Path, data: bytes, num_nodes: int, num_links: int) -> dict[str, Any]:
    arrays = load_npz(data, path)
    needed = ("seed", "dt_min", "budget_units", "time_min", "hour_local", *NODE_ARRAYS)
    for key in (*needed, "link_vc"):
        if key not in arrays:
            raise fail("missing array", path, key)
    seed = _scalar(arrays, "seed", "iu", path)
    if not 0 <= seed < 2**63:
        raise fail(f"is {seed:g}", path, "seed")
    dt_min = _scalar(arrays, "dt_min", _REAL_KINDS, path)
    if not 0.0 < dt_min <= MAX_DT_MIN:
        raise fail(f"is {dt_min:g}", path, "dt_min")
    budget = _scalar(arrays, "budget_units", _REAL_KINDS, path)
    if not 0.0 <= budget <= 1e12:
        raise fail(f"is {budget:g}", path, "budget_units")
    t = arrays["time_min"].shape[0] if arrays["time_min"].ndim == 1 else -1
    if t < 1:
        raise fail("has no steps, or is not one row of times", path, "time_min")
    shapes: dict[str, tuple[int, ...]] = {"time_min": (t,), "hour_local": (t,)}
    shapes |= {k: (t, num_nodes) for k in NODE_ARRAYS} | {"link_vc": (t, num_links)}
    for key, shape in shapes.items():
        values = arrays[key]
        if values.dtype.kind not in _REAL_KINDS:
            raise fail(f"holds {values.dtype} values, not real numbers", path, key)
        if values.shape != shape:
            raise fail(f"has shape {values.shape}, expected {shape}", path, key)
        if not np.isfinite(values).all():
            raise fail("has NaN or infinite values", path, key)
        if values.size and values.min() < 0:
            raise fail("has negative values", path, key)
        arrays[key] = values.astype(np.float64) if key in ("time_min", "hour_local") else values
    time_min = arrays["time_min"]
    if t > 1 and not np.allclose(np.diff(time_min), dt_min, rtol=1e-9, atol=1e-6):
        raise fail(f"is not steps of dt_min = {dt_min:g} minutes", path, "time_min")
    if time_min[-1] > 1e9:
        raise fail("runs past a billion minutes", path, "time_min")
    _in_range(arrays["hour_local"], 0.0, 24.0, path, "hour_local")
    used = arrays["allocation"].astype(np.float64).sum(axis=1)
    if used.max() > budget * (1 + 1e-3) + 1e-6:
        raise fail(f"uses more than the budget of {budget:g} units in a step", path, "allocation")
    for key in ("seed", "dt_min", "budget_units"):
        arrays.pop(key)
    return {"seed": int(seed), "dt_min": dt_min, "budget_units": budget, **arrays}


def _read_incidents(
    path: Path, data: bytes, num_nodes: int, num_links: int, day: dict[str, Any]
) -> dict[str, np.ndarray]:
    rows = csv_rows(data, path, INCIDENT_COLUMNS, EXPECTED)
    columns = {k: [row[k] for row in rows] for k in INCIDENT_COLUMNS}
    table: dict[str, np.ndarray] = {}
    for key in ("kind", "status"):
        table[key] = np.asarray(columns[key], dtype=str)
    if not np.isin(table["kind"], INCIDENT_TYPES).all():
        raise fail("unknown kind", path, "kind")
    if not np.isin(table["status"], ["detected", "missed"]).all():
        raise fail("unknown status", path, "status")
    for key, lo, hi in (("node", 0, num_nodes), ("link", -1, num_links)):
        try:
            whole = [int(v) for v in columns[key]]
        except ValueError:
            raise fail("holds a value that is not a whole number", path, key) from None
        if any(v < lo or v >= hi for v in whole):
            raise fail(f"holds an index outside [{lo}, {hi})", path, key)
        table[key] = np.array(whole, dtype=np.int64)
    for key in ("start_min", "end_min", "damage", "severity", "detected_min"):
        try:
            values = [float(v) if v or key != "detected_min" else math.nan for v in columns[key]]
        except ValueError:
            raise fail("holds a value that is not a number", path, key) from None
        array = np.array(values, dtype=np.float64)
        finite = np.isfinite(array) if key == "detected_min" else np.ones(len(array), bool)
        if not np.isfinite(array[finite]).all() or (array[finite] < 0).any():
            raise fail("holds a negative, NaN or infinite value", path, key)
        table[key] = array
    first, dt_min = float(day["time_min"][0]), day["dt_min"]
    last = float(day["time_min"][-1]) + dt_min
    if rows:
        if table["start_min"].min() < first - 1e-6 or table["start_min"].max() > last + 1e-6:
            raise fail(f"starts outside the day's {first:g} to {last:g} min", path, "start_min")
        if (table["end_min"] < table["start_min"]).any():
            raise fail("ends before it starts", path, "end_min")
        detected = table["status"] == "detected"
        if (np.isfinite(table["detected_min"]) != detected).any():
            raise fail("is set for missed and only for detected incidents", path, "detected_min")
        if (table["detected_min"][detected] < table["start_min"][detected] - 1e-6).any():
            raise fail("is before the incident started", path, "detected_min")
    return table


def read_day_log(run_dir: Path) -> DayLog:
    """The `DayLog` in a run folder; `SimcityError` names any missing or malformed file."""
    run_dir = Path(run_dir)
    data = {name: read_run_file(run_dir, name) for name in (CITY_FILE, DAY_FILE, INCIDENTS_FILE)}
    city = _read_city(run_dir / CITY_FILE, data[CITY_FILE])
    n, num_links = len(city["node_id"]), len(city["link_tail"])
    day = _read_day(run_dir / DAY_FILE, data[DAY_FILE], n, num_links)
    incidents = _read_incidents(run_dir / INCIDENTS_FILE, data[INCIDENTS_FILE], n, num_links, day)
    for name, content in data.items():  # the very bytes parsed
        verify_run_file(run_dir, name, content)
    verify_run_file(run_dir, CITY_FILE, data[CITY_FILE], whole=True)  # and every other file
    return DayLog(**city, **day, incidents=incidents)
