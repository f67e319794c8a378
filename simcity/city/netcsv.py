"""Cities as two CSV files: ``nodes.csv`` and ``links.csv`` in one folder.

The compact form the bundled real cities ship in (``scenarios/data/<city>/``), written
once from an OSM extract or a SpatiaLite model by ``scripts/convert_real_cities.py`` and
read with no optional dependency:

- ``nodes.csv``: ``id, name, lon, lat, population, jobs, land_use, is_zone`` (0/1).
- ``links.csv``: ``tail, head, length_km, free_flow_time_min, capacity_veh_h, bpr_b,
  bpr_power, geometry``; ``geometry`` holds the road's interior points between its two
  nodes as ``lon lat;lon lat;...`` (empty for a straight link), so maps draw real streets.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from simcity.city.graph import (
    LINK_BPR_B,
    LINK_BPR_POWER,
    LINK_CAPACITY,
    LINK_FREE_FLOW_TIME,
    LINK_GEOMETRY,
    LINK_LENGTH,
    NODE_IS_ZONE,
    NODE_JOBS,
    NODE_LAND_USE,
    NODE_LAT,
    NODE_LON,
    NODE_NAME,
    NODE_POPULATION,
    NODE_THROUGH,
)
from simcity.errors import SimcityError
from simcity.safe_io import read_text

NODES_FILE, LINKS_FILE = "nodes.csv", "links.csv"
NODE_COLUMNS = ("id", "name", "lon", "lat", "population", "jobs", "land_use", "is_zone")
LINK_COLUMNS = (
    "tail",
    "head",
    "length_km",
    "free_flow_time_min",
    "capacity_veh_h",
    "bpr_b",
    "bpr_power",
    "geometry",
)
_NODE_NUMBERS = {"lon": NODE_LON, "lat": NODE_LAT, "population": NODE_POPULATION, "jobs": NODE_JOBS}
_LINK_NUMBERS = {
    "length_km": LINK_LENGTH,
    "free_flow_time_min": LINK_FREE_FLOW_TIME,
    "capacity_veh_h": LINK_CAPACITY,
    "bpr_b": LINK_BPR_B,
    "bpr_power": LINK_BPR_POWER,
}
_EXPECTED = "a city folder of nodes.csv and links.csv (simcity.city.netcsv)"


if TYPE_CHECKING:
    import networkx as nx


def read_network(folder: str | Path) -> nx.DiGraph:
    """The city graph in ``folder`` (people, jobs, zones and link geometry included)."""
    import networkx as nx

    root = Path(folder)
    graph = nx.DiGraph()
    nodes_path, links_path = root / NODES_FILE, root / LINKS_FILE
    for line, row in _rows(nodes_path, NODE_COLUMNS):
        attrs: dict[str, object] = {NODE_NAME: row["name"], NODE_LAND_USE: row["land_use"]}
        for column, key in _NODE_NUMBERS.items():
            attrs[key] = _number(row[column], nodes_path, line, column)
        if row["is_zone"] not in ("0", "1"):
            raise SimcityError(
                f"is_zone is {row['is_zone']!r}",
                file=nodes_path,
                field=f"line {line}",
                expected="0 or 1",
            )
        attrs[NODE_IS_ZONE] = row["is_zone"] == "1"
        attrs[NODE_THROUGH] = True
        if row["id"] in graph:
            raise SimcityError(
                f"second node {row['id']!r}",
                file=nodes_path,
                field=f"line {line}",
                expected="unique ids",
            )
        graph.add_node(row["id"], **attrs)
    for line, row in _rows(links_path, LINK_COLUMNS):
        tail, head = row["tail"], row["head"]
        for column, end in (("tail", tail), ("head", head)):
            if end not in graph:
                raise SimcityError(
                    f"link to unknown node {end!r}",
                    file=links_path,
                    field=f"line {line}, {column}",
                    expected="a node id of nodes.csv",
                )
        if tail == head or graph.has_edge(tail, head):
            raise SimcityError(
                f"loop or second link {tail}->{head}",
                file=links_path,
                field=f"line {line}",
                expected="one link per ordered pair of distinct nodes",
            )
        attrs = {key: _number(row[c], links_path, line, c) for c, key in _LINK_NUMBERS.items()}
        inner = _points(row["geometry"], links_path, line)
        ends = [(graph.nodes[n][NODE_LON], graph.nodes[n][NODE_LAT]) for n in (tail, head)]
        attrs[LINK_GEOMETRY] = (ends[0], *inner, ends[1])
        graph.add_edge(tail, head, **attrs)
    return graph


def write_network(folder: str | Path, graph: nx.DiGraph) -> None:
    """Write ``graph`` as ``nodes.csv`` and ``links.csv`` in ``folder`` (made if need be)."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    nodes = io.StringIO()
    writer = csv.writer(nodes, lineterminator="\n")
    writer.writerow(NODE_COLUMNS)
    for node, d in graph.nodes(data=True):
        writer.writerow(
            [
                node,
                d.get(NODE_NAME, node),
                f"{d[NODE_LON]:.7f}",
                f"{d[NODE_LAT]:.7f}",
                f"{d[NODE_POPULATION]:.9g}",
                f"{d[NODE_JOBS]:.9g}",
                d[NODE_LAND_USE],
                int(bool(d[NODE_IS_ZONE])),
            ]
        )
    links = io.StringIO()
    writer = csv.writer(links, lineterminator="\n")
    writer.writerow(LINK_COLUMNS)
    for u, v, d in graph.edges(data=True):
        inner = ";".join(f"{lon:.6f} {lat:.6f}" for lon, lat in d.get(LINK_GEOMETRY, ())[1:-1])
        writer.writerow([u, v, *(f"{d[key]:.9g}" for key in _LINK_NUMBERS.values()), inner])
    (root / NODES_FILE).write_text(nodes.getvalue(), encoding="utf-8")
    (root / LINKS_FILE).write_text(links.getvalue(), encoding="utf-8")


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(read_text(path, expected=_EXPECTED)))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise SimcityError("missing column", file=path, field=missing[0], expected=_EXPECTED)
    rows = []
    for row in reader:
        if None in row.values() or None in row:
            raise SimcityError(
                f"row of the wrong width on line {reader.line_num}",
                file=path,
                expected=f"{len(reader.fieldnames or [])} columns",
            )
        rows.append((reader.line_num, row))
    if not rows:
        raise SimcityError("no rows", file=path, expected=_EXPECTED)
    return rows


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SimcityError(
            f"{column} is {text[:20]!r}", file=path, field=f"line {line}", expected="a number"
        ) from None


def _points(text: str, path: Path, line: int) -> list[tuple[float, float]]:
    points = []
    for pair in filter(None, text.split(";")):
        parts = pair.split()
        try:
            lon, lat = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise SimcityError(
                f"geometry point {pair[:30]!r}",
                file=path,
                field=f"line {line}, geometry",
                expected="'lon lat' pairs separated by ';'",
            ) from None
        if not (abs(lon) <= 180 and abs(lat) <= 90) or len(parts) != 2:
            raise SimcityError(
                f"geometry point {pair[:30]!r}",
                file=path,
                field=f"line {line}, geometry",
                expected="WGS84 'lon lat' pairs",
            )
        points.append((lon, lat))
    return points
