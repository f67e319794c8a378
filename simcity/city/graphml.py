"""Road graphs from GraphML, as saved by OSMnx (``ox.save_graphml``).

OSMnx writes a MultiDiGraph whose nodes carry ``x`` (lon) and ``y`` (lat) and whose
edges carry ``length`` (metres), ``highway`` and, where OSM has them, ``lanes``,
``maxspeed``, ``speed_kph``; all values may be strings, and lists appear as ``"['2', '3']"``
(how each is read: `simcity.city.osm_values`).
Parallel edges collapse to the fastest; the largest strongly connected part is kept so
every zone can reach every other.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import ParseError

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
from simcity.city.osm_values import EdgeValues, as_number
from simcity.config.city import RoadConfig
from simcity.errors import SimcityError
from simcity.safe_io import excerpt, read_bytes

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
#: GraphML parsing problems networkx and ElementTree raise on malformed content.
_PARSE_ERRORS = (
    ParseError,
    ValueError,  # networkx's NetworkXError is an Exception: caught by name below
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    LookupError,  # an XML declaration naming an unknown encoding
    RecursionError,
    OverflowError,
)


def _highway(value: Any) -> str:
    text = str(value or "")
    return next((h for h in HIGHWAY_DEFAULTS if h in text), "residential")


def read_graphml(path: str | Path, roads: RoadConfig | None = None) -> nx.DiGraph:
    """Read an OSMnx-style GraphML file into a road graph (no people or zones yet).

    Numbers are read strictly (`simcity.city.osm_values`): a length must be metres >= 0,
    lanes > 0, speeds from 1 to 500 km/h; anything else is a `SimcityError` naming the
    file, the edge and the attribute. An undirected graph's edges run both ways.
    """
    import networkx as nx

    roads = roads or RoadConfig()
    path = Path(path)
    data_bytes = read_bytes(path, expected="a GraphML file")
    try:
        raw = nx.parse_graphml(data_bytes)
    except (*_PARSE_ERRORS, nx.NetworkXError) as err:
        raise SimcityError(
            f"not readable GraphML ({type(err).__name__}: {excerpt(err, 80)})",
            file=path,
            expected="a GraphML file, as OSMnx saves it",
        ) from None
    if not raw.is_directed():
        raw = raw.to_directed()
    graph = nx.DiGraph()
    for node, data in raw.nodes(data=True):
        lon, lat = as_number(data.get("x")), as_number(data.get("y"))
        if lon is None or lat is None:
            raise SimcityError(
                f"node {excerpt(node)} has no numeric x/y",
                file=path,
                field="node.x, node.y",
                expected="longitude and latitude in degrees (as OSMnx saves them)",
            )
        if not (abs(lon) <= 180 and abs(lat) <= 90):
            raise SimcityError(
                f"node {excerpt(node)} is at x={lon}, y={lat}",
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
        values = EdgeValues(path, u, v, data)
        length_m = values.plain("length", positive=False)
        if length_m is None:
            raise values.error("length", "metres >= 0")
        highway = _highway(data.get("highway"))
        default_speed, default_lanes = HIGHWAY_DEFAULTS.get(highway, (roads.speed_kmh, roads.lanes))
        speed_kph, maxspeed = values.speed_kmh("speed_kph"), values.speed_kmh("maxspeed")
        speed_kmh = speed_kph or maxspeed or default_speed
        lanes = values.lanes()
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
        raise SimcityError(
            "the GraphML graph has no usable edges",
            file=path,
            field="edges",
            expected="road edges between distinct nodes",
        )
    largest = max(nx.strongly_connected_components(graph), key=len)
    if len(largest) < 2:
        raise SimcityError(
            "no two nodes reach each other both ways",
            file=path,
            field="edges",
            expected="a road network with a strongly connected part of >= 2 nodes",
        )
    return nx.DiGraph(graph.subgraph(largest))


def _oneway(data: dict[str, Any]) -> bool:
    return str(data.get("oneway", "False")).lower() in ("true", "yes", "1")
