"""Road graphs from GraphML, as saved by OSMnx (``ox.save_graphml``).

OSMnx writes a MultiDiGraph whose nodes carry ``x`` (lon) and ``y`` (lat) and whose
edges carry ``length`` (metres), ``highway`` and, where OSM has them, ``lanes``,
``maxspeed``, ``speed_kph``; all values may be strings, and lists appear as ``"['2', '3']"``.
Parallel edges collapse to the fastest; the largest strongly connected part is kept so
every zone can reach every other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import ParseError

import numpy as np

from simcity.city.graph import (
    LINK_BPR_B,
    LINK_BPR_POWER,
    LINK_CAPACITY,
    LINK_FREE_FLOW_TIME,
    LINK_LENGTH,
    NODE_LAT,
    NODE_LON,
    NODE_NAME,
)
from simcity.config.city import RoadConfig
from simcity.errors import SimcityError

if TYPE_CHECKING:
    import networkx as nx

# Free speed (km/h) and lanes per direction by OSM highway class, where OSM says nothing.
HIGHWAY_DEFAULTS: dict[str, tuple[float, int]] = {
    "motorway": (100.0, 3),
    "trunk": (80.0, 2),
    "primary": (50.0, 2),
    "secondary": (50.0, 2),
    "tertiary": (40.0, 1),
}
_MPH = 1.609344


def _first_number(value: Any) -> float | None:
    """The first number in an OSM tag value ("30 mph", "['2', '3']", 50) in km/h or count."""
    if value is None:
        return None
    text = str(value)
    match = re.search(r"\d+(\.\d+)?", text)
    if match is None:
        return None
    number = float(match.group())
    return number * _MPH if "mph" in text else number


def _highway(value: Any) -> str:
    text = str(value or "")
    return next((h for h in HIGHWAY_DEFAULTS if h in text), "residential")


def read_graphml(path: str | Path, roads: RoadConfig | None = None) -> nx.DiGraph:
    """Read an OSMnx-style GraphML file into a road graph (no people or zones yet)."""
    import networkx as nx

    roads = roads or RoadConfig()
    path = Path(path)
    try:
        raw = nx.read_graphml(path)
    except FileNotFoundError:
        raise SimcityError("no such GraphML file", file=path) from None
    except (ParseError, nx.NetworkXError, ValueError) as err:
        raise SimcityError(f"not readable GraphML: {err}", file=path) from None
    graph = nx.DiGraph()
    for node, data in raw.nodes(data=True):
        try:
            lon, lat = float(data["x"]), float(data["y"])
        except (KeyError, TypeError, ValueError):
            raise SimcityError(
                f"node {node!r} has no numeric x/y",
                file=path,
                field="node.x, node.y",
                expected="longitude and latitude in degrees (as OSMnx saves them)",
            ) from None
        if not (np.isfinite(lon) and np.isfinite(lat) and abs(lon) <= 180 and abs(lat) <= 90):
            raise SimcityError(
                f"node {node!r} is at x={lon}, y={lat}",
                file=path,
                field="node.x, node.y",
                expected="WGS84 degrees (an unprojected OSMnx graph)",
            )
        graph.add_node(
            node, **{NODE_NAME: str(data.get("name", node)), NODE_LON: lon, NODE_LAT: lat}
        )
    for u, v, data in raw.edges(data=True):
        if u == v:
            continue
        length_m = _first_number(data.get("length"))
        if length_m is None or length_m < 0:
            raise SimcityError(
                f"edge {u}->{v} has length {data.get('length')!r}",
                file=path,
                field="edge.length",
                expected="metres >= 0",
            )
        highway = _highway(data.get("highway"))
        default_speed, default_lanes = HIGHWAY_DEFAULTS.get(highway, (roads.speed_kmh, roads.lanes))
        speed_kmh = _first_number(data.get("speed_kph")) or _first_number(data.get("maxspeed"))
        speed_kmh = speed_kmh if speed_kmh and speed_kmh > 0 else default_speed
        lanes = _first_number(data.get("lanes"))
        lanes = max(1.0, lanes / (1 if _oneway(data) else 2)) if lanes else float(default_lanes)
        length_km = max(length_m / 1000.0, 1e-3)
        attrs = {
            LINK_LENGTH: length_km,
            LINK_FREE_FLOW_TIME: 60.0 * length_km / speed_kmh,
            LINK_CAPACITY: lanes * roads.lane_capacity_veh_h,
            LINK_BPR_B: roads.bpr_b,
            LINK_BPR_POWER: roads.bpr_power,
        }
        old = graph.get_edge_data(u, v)
        if old is None or attrs[LINK_FREE_FLOW_TIME] < old[LINK_FREE_FLOW_TIME]:
            graph.add_edge(u, v, **attrs)
    if graph.number_of_edges() == 0:
        raise SimcityError("the GraphML graph has no usable edges", file=path, field="edges")
    largest = max(nx.strongly_connected_components(graph), key=len)
    return nx.DiGraph(graph.subgraph(largest))


def _oneway(data: dict[str, Any]) -> bool:
    return str(data.get("oneway", "False")).lower() in ("true", "yes", "1")
