"""Mutations of a real run folder for the run-folder corpus: each takes a file's bytes and
returns the tampered bytes, and names the field the refusal must mention."""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

Mutate = Callable[[bytes], bytes]


class Case(NamedTuple):
    id: str
    file: str
    mutate: Mutate
    says: str  # what the one-line error must contain


# --- JSON files --------------------------------------------------------------------------


def on_json(change: Callable[[Any], Any]) -> Mutate:
    def mutate(data: bytes) -> bytes:
        doc = json.loads(data)
        change(doc)
        return json.dumps(doc).encode()

    return mutate


def set_path(*path: Any, value: Any) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return change


def first(key: str, value: Any) -> Callable[[Any], None]:
    section = "links" if key in ("tail", "head", "capacity_veh_h") else "nodes"

    def change(doc: Any) -> None:
        doc[section][key][0] = value

    return change


def in_a_list(data: bytes) -> bytes:
    return json.dumps([json.loads(data)]).encode()


def pop(*path: str) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        for key in path[:-1]:
            doc = doc[key]
        value = doc[path[-1]]
        if isinstance(value, list):
            value.pop()
        else:
            del doc[path[-1]]

    return change


def raw(data: bytes) -> Mutate:
    return lambda _: data


CITY = [
    Case("lon NaN", "city.json", on_json(first("lon", math.nan)), "nodes.lon"),
    Case("lon 1e308", "city.json", on_json(first("lon", 1e308)), "nodes.lon"),
    Case("lat 91", "city.json", on_json(first("lat", 91.0)), "nodes.lat"),
    Case("lon text", "city.json", on_json(first("lon", "1")), "nodes.lon"),
    Case("lon complex text", "city.json", on_json(first("lon", "1+2j")), "nodes.lon"),
    Case("lon bool", "city.json", on_json(first("lon", True)), "nodes.lon"),
    Case("lon null", "city.json", on_json(first("lon", None)), "nodes.lon"),
    Case("lon huge int", "city.json", on_json(first("lon", 10**400)), "nodes.lon"),
    Case("population negative", "city.json", on_json(first("population", -5)), "population"),
    Case("jobs infinite", "city.json", on_json(first("jobs", math.inf)), "nodes.jobs"),
    Case("ids not text", "city.json", on_json(set_path("nodes", "id", value=[1, 2])), "nodes.id"),
    Case("name a table", "city.json", on_json(first("name", {"a": 1})), "nodes.name"),
    Case(
        "lon short",
        "city.json",
        on_json(pop("nodes", "lon")),
        "nodes.lon",
    ),
    Case("tail out of range", "city.json", on_json(first("tail", 10**6)), "links.tail"),
    Case("tail negative", "city.json", on_json(first("tail", -1)), "links.tail"),
    Case("head a fraction", "city.json", on_json(first("head", 1.5)), "links.head"),
    Case("head bool", "city.json", on_json(first("head", True)), "links.head"),
    Case("capacity NaN", "city.json", on_json(first("capacity_veh_h", math.nan)), "capacity"),
    Case(
        "capacity short",
        "city.json",
        on_json(pop("links", "capacity_veh_h")),
        "links.capacity_veh_h",
    ),
    Case("no nodes", "city.json", on_json(pop("nodes")), "nodes"),
    Case("links a list", "city.json", on_json(set_path("links", value=[1])), "links"),
    Case("title a number", "city.json", on_json(set_path("title", value=5)), "title"),
    Case("a list", "city.json", in_a_list, "JSON object"),
    Case("no nodes at all", "city.json", on_json(set_path("nodes", "id", value=[])), "nodes"),
    Case("truncated", "city.json", lambda b: b[: len(b) // 2], "not valid JSON"),
    Case("UTF-16", "city.json", lambda b: b.decode().encode("utf-16"), "UTF-16"),
    Case("NUL bytes", "city.json", lambda b: b.replace(b"{", b"{\x00", 1), "NUL"),
    Case("deep nesting", "city.json", raw(b"[" * 100_000), "JSON"),
    Case("empty", "city.json", raw(b""), "not valid JSON"),
]

# --- day.npz -----------------------------------------------------------------------------


def on_npz(change: Callable[[dict[str, np.ndarray]], None]) -> Mutate:
    def mutate(data: bytes) -> bytes:
        with np.load(io.BytesIO(data)) as npz:
            arrays = {k: npz[k] for k in npz.files}
        change(arrays)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)  # object arrays are pickled: refused on reading
        return buffer.getvalue()

    return mutate


def put(key: str, value: Any) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = value(arrays[key]) if callable(value) else np.asarray(value)

    return change


def first_value(value: Any) -> Callable[[np.ndarray], np.ndarray]:
    def change(array: np.ndarray) -> np.ndarray:
        array = array.copy()
        array.flat[0] = value
        return array

    return change


def lying_header(data: bytes) -> bytes:
    """An ``allocation.npy`` whose header claims 10^12 values that are not there."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    )
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = header.getvalue() if item.filename == "allocation.npy" else src.read(item)
            dst.writestr(item.filename, body)
    return out.getvalue()


def extra_member(data: bytes) -> bytes:
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("evil.txt", "hello")
    return out.getvalue()


DAY = [
    Case("seed an array", "day.npz", on_npz(put("seed", [1, 2])), "seed"),
    Case("seed a fraction", "day.npz", on_npz(put("seed", 1.5)), "seed"),
    Case("seed negative", "day.npz", on_npz(put("seed", -1)), "seed"),
    Case("seed text", "day.npz", on_npz(put("seed", "0")), "seed"),
    Case("dt_min 0", "day.npz", on_npz(put("dt_min", 0.0)), "dt_min"),
    Case("dt_min -15", "day.npz", on_npz(put("dt_min", -15.0)), "dt_min"),
    Case("dt_min 1e308", "day.npz", on_npz(put("dt_min", 1e308)), "dt_min"),
    Case("dt_min NaN", "day.npz", on_npz(put("dt_min", math.nan)), "dt_min"),
    Case("budget NaN", "day.npz", on_npz(put("budget_units", math.nan)), "budget_units"),
    Case("start NaN", "day.npz", on_npz(put("time_min", first_value(math.nan))), "time_min"),
    Case("times complex", "day.npz", on_npz(put("time_min", lambda a: a + 1j)), "time_min"),
    Case(
        "allocation text",
        "day.npz",
        on_npz(put("allocation", lambda a: a.astype(str))),
        "allocation",
    ),
    Case(
        "allocation complex",
        "day.npz",
        on_npz(put("allocation", lambda a: a.astype(complex))),
        "allocation",
    ),
    Case(
        "allocation objects",
        "day.npz",
        on_npz(put("allocation", lambda a: a.astype(object))),
        "allocation",
    ),
    Case(
        "allocation shape", "day.npz", on_npz(put("allocation", lambda a: a[:, :-1])), "allocation"
    ),
    Case(
        "allocation negative",
        "day.npz",
        on_npz(put("allocation", first_value(-1.0))),
        "allocation",
    ),
    Case(
        "allocation infinite",
        "day.npz",
        on_npz(put("allocation", first_value(np.inf))),
        "allocation",
    ),
    Case(
        "allocation over budget",
        "day.npz",
        on_npz(put("allocation", lambda a: a * 10)),
        "allocation",
    ),
    Case("link_vc shape", "day.npz", on_npz(put("link_vc", lambda a: a[:, :3])), "link_vc"),
    Case("risk NaN", "day.npz", on_npz(put("risk_per_h", first_value(np.nan))), "risk_per_h"),
    Case(
        "no congestion",
        "day.npz",
        on_npz(lambda arrays: arrays.__delitem__("congestion")),
        "congestion",
    ),
    Case("hour 25", "day.npz", on_npz(put("hour_local", first_value(25.0))), "hour_local"),
    Case("irregular steps", "day.npz", on_npz(put("time_min", first_value(-7.0))), "time_min"),
    Case("times 2-D", "day.npz", on_npz(put("time_min", lambda a: a[None, :])), "time_min"),
    Case("no steps", "day.npz", on_npz(put("time_min", lambda a: a[:0])), "time_min"),
    Case(
        "error bools",
        "day.npz",
        on_npz(put("estimation_error", lambda a: a > 0)),
        "estimation_error",
    ),
    Case(
        "times dates",
        "day.npz",
        on_npz(put("time_min", lambda a: a.astype("datetime64[m]"))),
        "time_min",
    ),
    Case("truncated", "day.npz", lambda b: b[: len(b) // 2], "not a readable .npz"),
    Case("not a zip", "day.npz", raw(b"not a zip"), "not a readable .npz"),
    Case("empty", "day.npz", raw(b""), "not a readable .npz"),
    Case("lying header", "day.npz", lying_header, "truncated"),
    Case("extra member", "day.npz", extra_member, "not an array"),
]

# --- CSV files ---------------------------------------------------------------------------


def on_csv(change: Callable[[list[dict[str, str]], list[str]], Any]) -> Mutate:
    def mutate(data: bytes) -> bytes:
        reader = csv.DictReader(io.StringIO(data.decode()))
        rows = list(reader)
        header = list(reader.fieldnames or [])
        header = change(rows, header) or header
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().encode()

    return mutate


def cell(column: str, value: str) -> Mutate:
    def change(rows: list[dict[str, str]], header: list[str]) -> None:
        rows[0][column] = value

    return on_csv(change)


def cells(**values: str) -> Mutate:
    def change(rows: list[dict[str, str]], header: list[str]) -> None:
        rows[0].update(values)

    return on_csv(change)


def drop_column(column: str) -> Mutate:
    return on_csv(lambda rows, header: [h for h in header if h != column])


def line_edit(edit: Callable[[list[str]], None]) -> Mutate:
    def mutate(data: bytes) -> bytes:
        lines = data.decode().splitlines()
        edit(lines)
        return ("\n".join(lines) + "\n").encode()

    return mutate


def add_cell(lines: list[str]) -> None:
    lines[1] += ",extra"


def cut_cell(lines: list[str]) -> None:
    lines[1] = lines[1].rsplit(",", 1)[0]


INCIDENTS = [
    Case("node out of range", "incidents.csv", cell("node", "16"), "node"),
    Case("node negative", "incidents.csv", cell("node", "-1"), "node"),
    Case("node text", "incidents.csv", cell("node", "x"), "node"),
    Case("node a fraction", "incidents.csv", cell("node", "1.5"), "node"),
    Case("link out of range", "incidents.csv", cell("link", "100000"), "link"),
    Case("link -2", "incidents.csv", cell("link", "-2"), "link"),
    Case("start NaN", "incidents.csv", cell("start_min", "nan"), "start_min"),
    Case("start empty", "incidents.csv", cell("start_min", ""), "start_min"),
    Case("start infinite", "incidents.csv", cell("start_min", "inf"), "start_min"),
    Case("start 1e308", "incidents.csv", cell("start_min", "1e308"), "start_min"),
    Case("ends first", "incidents.csv", cell("end_min", "0"), "end_min"),
    Case("damage negative", "incidents.csv", cell("damage", "-1"), "damage"),
    Case("severity 1e999", "incidents.csv", cell("severity", "1e999"), "severity"),
    Case("kind unknown", "incidents.csv", cell("kind", "meteor"), "kind"),
    Case("status unknown", "incidents.csv", cell("status", "maybe"), "status"),
    Case(
        "detected, no time",
        "incidents.csv",
        cells(status="detected", detected_min=""),
        "detected_min",
    ),
    Case("missed, with time", "incidents.csv", cells(status="missed"), "detected_min"),
    Case("detected first", "incidents.csv", cell("detected_min", "0"), "detected_min"),
    Case("extra cell", "incidents.csv", line_edit(add_cell), "line 2"),
    Case("missing cell", "incidents.csv", line_edit(cut_cell), "line 2"),
    Case("no severity", "incidents.csv", drop_column("severity"), "severity"),
    Case("binary", "incidents.csv", raw(b"\xff\xfe\x00garbage\x81"), "UTF"),
    Case("empty", "incidents.csv", raw(b""), "missing column"),
]

STEPS = [
    Case("units NaN", "steps.csv", cell("units_used", "nan"), "units_used"),
    Case("units infinite", "steps.csv", cell("units_used", "inf"), "units_used"),
    Case("units text", "steps.csv", cell("units_used", "abc"), "units_used"),
    Case("hour 30", "steps.csv", cell("hour_local", "30"), "hour_local"),
    Case("episode -1", "steps.csv", cell("episode", "-1"), "episode"),
    Case("episode 0.5", "steps.csv", cell("episode", "0.5"), "episode"),
    Case(
        "no carbon column",
        "steps.csv",
        drop_column("datacentre_g_per_kwh"),
        "datacentre_g_per_kwh",
    ),
    Case("empty", "steps.csv", raw(b""), "missing column"),
    Case("header only", "steps.csv", lambda b: b.split(b"\n", 1)[0] + b"\n", "no steps"),
    Case("extra cell", "steps.csv", line_edit(add_cell), "line 2"),
]

SUMMARY = [
    Case("kpis text", "summary.json", on_json(set_path("kpis", value="lots")), "kpis"),
    Case("kpi text", "summary.json", on_json(set_path("kpis", "damage", value="x")), "damage"),
    Case(
        "kpi mean text",
        "summary.json",
        on_json(set_path("kpis", "damage", "mean", value="1")),
        "kpis.damage",
    ),
    Case(
        "kpi mean bool",
        "summary.json",
        on_json(set_path("kpis", "damage", "mean", value=True)),
        "kpis.damage",
    ),
    Case(
        "kpi mean huge",
        "summary.json",
        on_json(set_path("kpis", "damage", "mean", value=10**400)),
        "kpis.damage",
    ),
    Case("episodes text", "summary.json", on_json(set_path("episodes", value="1")), "episodes"),
    Case("episodes 0", "summary.json", on_json(set_path("episodes", value=0)), "episodes"),
    Case("episodes 1e9", "summary.json", on_json(set_path("episodes", value=10**9)), "episodes"),
    Case("seeds text", "summary.json", on_json(set_path("seeds", value="0")), "seeds"),
    Case("seeds too many", "summary.json", on_json(set_path("seeds", value=[0, 1])), "seeds"),
    Case("seed negative", "summary.json", on_json(set_path("seeds", value=[-1])), "seeds"),
    Case("title a number", "summary.json", on_json(set_path("title", value=5)), "title"),
    Case("policy a list", "summary.json", on_json(set_path("policy", value=["x"])), "policy"),
    Case("a list", "summary.json", in_a_list, "JSON object"),
    Case("NaN", "summary.json", raw(b"NaN"), "JSON object"),
]

CONTENT_CASES = CITY + DAY + INCIDENTS + STEPS + SUMMARY

MANIFEST_CASES = [
    Case("not JSON", "run.json", raw(b"{"), "run.json"),
    Case("another format", "run.json", on_json(set_path("format", value="x")), "format"),
    Case("version 2", "run.json", on_json(set_path("format_version", value=2)), "format_version"),
    Case(
        "hash changed",
        "run.json",
        on_json(set_path("files", "day.npz", "sha256", value="0" * 64)),
        "not the file the run wrote",
    ),
    Case(
        "size text",
        "run.json",
        on_json(set_path("files", "city.json", "bytes", value="12")),
        "files.city.json",
    ),
    Case(
        "unknown file",
        "run.json",
        on_json(set_path("files", "../x", value={"bytes": 1, "sha256": "0" * 64})),
        "files.../x",
    ),
    Case(
        "city unlisted",
        "run.json",
        on_json(pop("files", "city.json")),
        "not listed",
    ),
]
