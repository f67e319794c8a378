"""Read networks in the TNTP format of the Transportation Networks for Research repository.

A folder holds ``<name>_net.tntp`` (links), ``<name>_trips.tntp`` (zone-to-zone demand)
and node coordinates, either ``<name>_node.tntp`` or a ``.geojson`` of points; ``_flow``
files hold published equilibrium flows. Files start with ``<KEY> value`` metadata lines up
to ``<END OF METADATA>``; ``~`` starts a comment; rows end with ``;``.

Units are the file's: free-flow times in minutes, capacities and demand in veh/h, and
lengths copied as they are into `LINK_LENGTH` (km only if the file's lengths are km).
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from simcity.city.graph import (
    LINK_BPR_B,
    LINK_BPR_POWER,
    LINK_CAPACITY,
    LINK_FREE_FLOW_TIME,
    LINK_LENGTH,
    NODE_IS_ZONE,
    NODE_JOBS,
    NODE_LAND_USE,
    NODE_LAT,
    NODE_LON,
    NODE_NAME,
    NODE_POPULATION,
    NODE_THROUGH,
    City,
)
from simcity.city.tntp_lines import (
    meta_int,
    node_id,
    numbered_lines,
    numbers,
    one_file,
    split_metadata,
)
from simcity.city.tntp_nodes import node_coordinates
from simcity.errors import SimcityError
from simcity.safe_io import excerpt

# Sioux Falls, SD, home of the most used TNTP network; where planar coordinates land.
DEFAULT_ORIGIN_LON = -96.73
DEFAULT_ORIGIN_LAT = 43.55
# `<TOTAL OD FLOW>` may differ from the sum of the trips by this fraction (rounding).
TOTAL_FLOW_TOLERANCE = 1e-3

_NET_COLUMNS = ("init_node", "term_node", "capacity", "length", "free_flow_time", "b", "power")
_FLOW_COLUMNS = ("from", "to", "volume", "cost")
#: What each link column must be: travel times divide by the free-flow time (NaN at 0), the
#: assignment needs a positive capacity and a BPR power of at least 1.
_NET_RANGES = {
    "capacity": (0.0, False, "> 0 veh/h"),
    "length": (0.0, True, ">= 0"),
    "free_flow_time": (0.0, False, "> 0 minutes (a slowdown divides by it)"),
    "b": (0.0, True, ">= 0"),
    "power": (1.0, True, ">= 1"),
}
#: Node ids of a flow file: integers that fit any index type.
MAX_NODE_ID = 2**31 - 1
#: The trips matrix is dense (Z x Z float64): refuse one over this many bytes, or over a
#: quarter of the machine's memory, before allocating it. The largest public TNTP networks
#: have a few thousand zones (Sydney: 3,264, 85 MB).
MAX_OD_BYTES = 4 * 1024**3


class LinkFlows(NamedTuple):
    """Link flows of a ``_flow.tntp`` file, in file order."""

    init_node: np.ndarray  # (L,) int TNTP node id
    term_node: np.ndarray  # (L,) int TNTP node id
    volume_veh_h: np.ndarray  # (L,)
    cost_min: np.ndarray  # (L,)


def read_tntp(
    folder: str | Path,
    *,
    name: str | None = None,
    origin_lon: float = DEFAULT_ORIGIN_LON,
    origin_lat: float = DEFAULT_ORIGIN_LAT,
    scale_km_per_unit: float | None = None,
) -> City:
    """Read a TNTP network folder (net, trips, node coordinates) into a `City`.

    Nodes are the TNTP ids 1..<NUMBER OF NODES>, in that order; zones are 1..<NUMBER OF
    ZONES>, so `City.zone_index` follows the rows of the trips matrix, which becomes
    `City.od_veh_h`. Zones below ``<FIRST THRU NODE>`` only start and end trips
    (`NODE_THROUGH` False). A zone's population is its trip productions (row sum) and its
    jobs its attractions (column sum), both in veh/h; land use is "mixed".

    Coordinates that all look like WGS84 (|x| <= 180, |y| <= 90) are lon/lat. Otherwise a
    ``.geojson`` of the nodes is used if there is one (of several, the layer of Points;
    a link layer beside it is skipped), else the plane is placed around
    (``origin_lon``, ``origin_lat``) at ``scale_km_per_unit`` (default: the longer side
    spans `simcity.city.tntp_nodes.DEFAULT_EXTENT_KM`).

    Args:
        folder: the folder holding the files.
        name: the city's name; default the files' prefix (``SiouxFalls``).
    """
    root = Path(folder)
    if not root.is_dir():
        raise SimcityError("no such folder", file=root, expected="a folder of TNTP files")
    net_path = one_file(root, "*_net.tntp")
    trips_path = one_file(root, "*_trips.tntp")
    meta, links = _read_net(net_path)
    num_nodes = meta_int(meta, "NUMBER OF NODES", net_path)
    num_zones = meta_int(meta, "NUMBER OF ZONES", net_path)
    first_thru = meta_int(meta, "FIRST THRU NODE", net_path) if "FIRST THRU NODE" in meta else 1
    if not 0 < num_zones <= num_nodes:
        raise SimcityError(
            f"{num_zones} zones for {num_nodes} nodes",
            file=net_path,
            field="<NUMBER OF ZONES>",
            expected="1 <= zones <= nodes",
        )
    # Coordinates first: the node rows really in the files bound the node count (and so
    # the zone count) before anything is allocated for the header's promise.
    lon, lat = node_coordinates(root, num_nodes, origin_lon, origin_lat, scale_km_per_unit)
    _check_od_size(num_zones, net_path)
    od = _read_trips(trips_path, num_zones)  # (Z, Z)

    import networkx as nx

    graph = nx.DiGraph()
    produced, attracted = od.sum(axis=1), od.sum(axis=0)  # (Z,)
    for node in range(1, num_nodes + 1):
        zone = node <= num_zones
        graph.add_node(
            node,
            **{
                NODE_NAME: str(node),
                NODE_LON: float(lon[node - 1]),
                NODE_LAT: float(lat[node - 1]),
                NODE_POPULATION: float(produced[node - 1]) if zone else 0.0,
                NODE_JOBS: float(attracted[node - 1]) if zone else 0.0,
                NODE_LAND_USE: "mixed",
                NODE_IS_ZONE: zone,
                NODE_THROUGH: not (zone and node < first_thru),
            },
        )
    for line, row in links:
        tail = node_id(row[0], num_nodes, net_path, f"line {line}, init_node")
        head = node_id(row[1], num_nodes, net_path, f"line {line}, term_node")
        if graph.has_edge(tail, head):
            raise SimcityError(
                f"second link {tail}->{head}",
                file=net_path,
                field=f"line {line}",
                expected="one link per ordered pair of nodes",
            )
        graph.add_edge(
            tail,
            head,
            **{
                LINK_CAPACITY: row[2],
                LINK_LENGTH: row[3],
                LINK_FREE_FLOW_TIME: row[4],
                LINK_BPR_B: row[5],
                LINK_BPR_POWER: row[6],
            },
        )
    return City(name or net_path.name[: -len("_net.tntp")], graph, od, source=str(net_path))


def read_tntp_flows(path: str | Path) -> LinkFlows:
    """Read a ``_flow.tntp`` file: a header line, then ``from to volume cost`` rows."""
    path = Path(path)
    lines = numbered_lines(path)
    rows = []
    for number, text in lines:
        parts = text.rstrip(";").split()
        if not parts or re.match(r"[+-]?[0-9]", parts[0]) is None:  # the header
            continue
        row = numbers(parts, 4, path, number, _FLOW_COLUMNS)
        for name, value in zip(_FLOW_COLUMNS, row, strict=True):
            if name in ("from", "to"):
                node_id(value, MAX_NODE_ID, path, f"line {number}, {name}")
            elif value < 0:
                raise SimcityError(
                    f"{name} is {value:g}",
                    file=path,
                    field=f"line {number}, {name}",
                    expected=">= 0",
                )
        rows.append(row)
    if not rows:
        raise SimcityError("no flow rows", file=path, expected="rows of: from to volume cost")
    table = np.array(rows)  # (L, 4)
    return LinkFlows(table[:, 0].astype(int), table[:, 1].astype(int), table[:, 2], table[:, 3])


def _read_net(path: Path) -> tuple[dict[str, str], list[tuple[int, list[float]]]]:
    """Metadata and ``(line, [init, term, capacity, length, t0, b, power])`` link rows."""
    meta, lines = split_metadata(path)
    links = [
        (n, numbers(text.rstrip(";").split(), len(_NET_COLUMNS), path, n, _NET_COLUMNS))
        for n, text in lines
    ]
    for line, row in links:
        for name, value in zip(_NET_COLUMNS[2:], row[2:], strict=True):
            low, inclusive, expected_range = _NET_RANGES[name]
            if value < low or (value == low and not inclusive):
                raise SimcityError(
                    f"{name} is {value:g}",
                    file=path,
                    field=f"line {line}, {name}",
                    expected=expected_range,
                )
    expected = meta_int(meta, "NUMBER OF LINKS", path)
    if len(links) != expected:
        raise SimcityError(
            f"{len(links)} link rows",
            file=path,
            field="<NUMBER OF LINKS>",
            expected=f"{expected} rows, as the metadata says",
        )
    return meta, links


def _check_od_size(num_zones: int, path: Path) -> None:
    """Refuse a zone count whose dense trips matrix would not fit, before allocating it."""
    need = 8 * num_zones * num_zones
    limit = min(MAX_OD_BYTES, _memory_bytes() // 4)
    if need > limit:
        raise SimcityError(
            f"{num_zones:,} zones need a {need:,}-byte trips matrix",
            file=path,
            field="<NUMBER OF ZONES>",
            expected=f"a trips matrix of at most {limit:,} bytes",
        )


def _memory_bytes() -> int:
    """Physical memory of this machine (bytes); `MAX_OD_BYTES` x 4 where unknown."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return 4 * MAX_OD_BYTES


def _read_trips(path: Path, num_zones: int) -> np.ndarray:
    """The (Z, Z) trips matrix of a ``_trips.tntp`` file."""
    meta, lines = split_metadata(path)
    zones = meta_int(meta, "NUMBER OF ZONES", path)
    if zones != num_zones:
        raise SimcityError(
            f"{zones} zones",
            file=path,
            field="<NUMBER OF ZONES>",
            expected=f"{num_zones}, as the net file says",
        )
    od = np.zeros((num_zones, num_zones))
    origin, total_trips = 0, 0.0
    for number, text in lines:
        header = re.fullmatch(r"Origin\s+(\S+)", text, flags=re.IGNORECASE)
        if header is not None:
            origin = _zone(header.group(1), num_zones, path, number, "Origin")
            continue
        if origin == 0:
            raise SimcityError(
                f"demand {excerpt(text, 30)} before any Origin line",
                file=path,
                field=f"line {number}",
                expected="'Origin k' then 'dest : trips;' entries",
            )
        for entry in filter(None, (e.strip() for e in text.split(";"))):
            dest, _, value = entry.partition(":")
            if not value:
                raise SimcityError(
                    f"entry {excerpt(entry)}",
                    file=path,
                    field=f"line {number}",
                    expected="'dest : trips;'",
                )
            column = _zone(dest.strip(), num_zones, path, number, "destination")
            trips = numbers([value.strip()], 1, path, number, ("trips",))[0]
            if trips < 0:
                raise SimcityError(
                    f"trips {trips:g}", file=path, field=f"line {number}, trips", expected=">= 0"
                )
            # Python floats: a sum past the float range becomes inf here, not a warning.
            cell = float(od[origin - 1, column - 1]) + trips
            total_trips += trips
            if not math.isfinite(total_trips):
                raise SimcityError(
                    "the trips sum to more than a float holds",
                    file=path,
                    field=f"line {number}, trips",
                    expected="finite demand in veh/h",
                )
            od[origin - 1, column - 1] = cell
    if "TOTAL OD FLOW" in meta:
        try:
            total = float(meta["TOTAL OD FLOW"])
        except ValueError:
            total = math.nan
        if not math.isfinite(total):
            raise SimcityError(
                f"is {excerpt(meta['TOTAL OD FLOW'])}",
                file=path,
                field="<TOTAL OD FLOW>",
                expected="a finite number",
            )
        if abs(total_trips - total) > TOTAL_FLOW_TOLERANCE * max(abs(total), 1.0):
            raise SimcityError(
                f"trips sum to {total_trips:g}",
                file=path,
                field="<TOTAL OD FLOW>",
                expected=f"{total:g}, as the metadata says",
            )
    return od


def _zone(text: str, num_zones: int, path: Path, line: int, field: str) -> int:
    if re.fullmatch(r"[0-9]{1,18}", text) is None or not 1 <= int(text) <= num_zones:
        raise SimcityError(
            f"{field} {excerpt(text)}",
            file=path,
            field=f"line {line}, {field}",
            expected=f"a zone in 1..{num_zones}",
        )
    return int(text)
