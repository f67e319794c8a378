"""Road graphs from OpenStreetMap extracts (``.osm.pbf``, ``.osm``), read with pyosmium.

Needs the optional ``osm`` extra (``pip install simcity[osm]``: pyosmium, BSD-2-Clause,
binary wheels for Linux, macOS and Windows). The rules, each stated once here:

- **Drivable roads** are ways whose ``highway`` is a key of `ROAD_CLASSES` (motorway to
  living street and their ``_link`` ramps; service roads, tracks, paths and anything under
  construction are left out), unless ``access``/``motor_vehicle``/``motorcar`` is ``no``
  or ``private``, or ``area=yes``.
- **One-way**: ``oneway=yes|true|1`` runs with the way, ``-1|reverse`` against it;
  motorways and roundabouts (``junction=roundabout|circular``) are one-way unless
  ``oneway=no``. Everything else is two links, one per direction.
- **Speed**: ``maxspeed`` (km/h; ``mph`` converted; ``XX:urban`` 50, ``XX:rural`` 80,
  ``XX:motorway`` 120, ``XX:living_street`` 20; ``maxspeed:forward``/``:backward`` win per
  direction), else the class default of `ROAD_CLASSES`.
- **Lanes per direction**: ``lanes:forward``/``lanes:backward``, else ``lanes`` (all of it
  on a one-way, half of it, at least one, on a two-way road), else the class default.
- **Capacity** = lanes x the class's capacity per lane (`ROAD_CLASSES`, veh/h/lane).
- **Intersections only**: a node that only continues one road (two neighbours, traffic
  through it both ways or one way) is merged away; the merged link sums length and
  free-flow time, keeps the smallest capacity on the chain (its bottleneck) and the road's
  points as its geometry. Parallel links keep the fastest.
- The **largest strongly connected part** is kept, so every zone can reach every other.

People and jobs come from `simcity.city.osm_people`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from simcity.city.graph import (
    LINK_BPR_B,
    LINK_BPR_POWER,
    LINK_CAPACITY,
    LINK_FREE_FLOW_TIME,
    LINK_GEOMETRY,
    LINK_LENGTH,
    NODE_LAT,
    NODE_LON,
    NODE_NAME,
)
from simcity.errors import SimcityError
from simcity.safe_io import DATA_MAX_BYTES, read_bytes

if TYPE_CHECKING:
    import networkx as nx


class RoadClass(NamedTuple):
    speed_kmh: float
    lanes: int  # per direction
    lane_capacity_veh_h: float


# Defaults per OSM highway class where the tags say nothing. Speeds are typical urban
# limits; capacities per lane follow the Highway Capacity Manual's orders of magnitude:
# about 2,000 veh/h/lane on freeways, 1,800 on multilane highways, and 600-1,000 on urban
# streets, where signals take a share of the green time.
ROAD_CLASSES: dict[str, RoadClass] = {
    "motorway": RoadClass(100.0, 2, 2000.0),
    "motorway_link": RoadClass(60.0, 1, 1500.0),
    "trunk": RoadClass(80.0, 2, 1800.0),
    "trunk_link": RoadClass(50.0, 1, 1200.0),
    "primary": RoadClass(50.0, 2, 1000.0),
    "primary_link": RoadClass(40.0, 1, 900.0),
    "secondary": RoadClass(50.0, 1, 900.0),
    "secondary_link": RoadClass(40.0, 1, 800.0),
    "tertiary": RoadClass(40.0, 1, 800.0),
    "tertiary_link": RoadClass(30.0, 1, 700.0),
    "unclassified": RoadClass(40.0, 1, 600.0),
    "residential": RoadClass(30.0, 1, 600.0),
    "living_street": RoadClass(20.0, 1, 300.0),
}
IMPLICIT_SPEEDS_KMH = {"urban": 50.0, "rural": 80.0, "motorway": 120.0, "living_street": 20.0}
_MPH = 1.609344
_NO_ACCESS = ("no", "private")
_EARTH_RADIUS_KM = 6371.0088
EXPECTED = "an OpenStreetMap extract (.osm.pbf or .osm) with drivable roads"


class BBox(NamedTuple):
    west: float
    south: float
    east: float
    north: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north

    @classmethod
    def around(cls, lon: float, lat: float, radius_km: float) -> BBox:
        """The box of ``radius_km`` around a centre (a square, for speed of reading)."""
        dlat = math.degrees(radius_km / _EARTH_RADIUS_KM)
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        return cls(lon - dlon, lat - dlat, lon + dlon, lat + dlat)


class Polygon(NamedTuple):
    """A closed way with tags of interest: building or land use."""

    lon: np.ndarray  # (P,) ring, first point repeated last
    lat: np.ndarray  # (P,)
    tags: dict[str, str]


@dataclass
class OsmData:
    """What a pass over the extract collected: drivable segments, buildings, land use."""

    node_lonlat: dict[int, tuple[float, float]] = field(default_factory=dict)
    segments: list[tuple[int, int, dict[str, float]]] = field(default_factory=list)
    """Directed node-to-node pieces of drivable ways: (from id, to id, link attributes)."""
    buildings: list[Polygon] = field(default_factory=list)
    land_use: list[Polygon] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)


def read_osm(path: str | Path, *, bbox: BBox | None = None) -> OsmData:
    """Read the drivable roads, buildings and land use of an extract (inside ``bbox``)."""
    path = Path(path)
    data = read_bytes(path, expected=EXPECTED, max_bytes=DATA_MAX_BYTES)
    try:
        import osmium
        import osmium.io
    except ImportError:
        raise SimcityError(
            "reading OpenStreetMap needs pyosmium", file=path, expected="pip install 'simcity[osm]'"
        ) from None
    fmt = "osm" if path.name.endswith((".osm", ".xml")) else "pbf"
    out = OsmData()
    try:
        processor = osmium.FileProcessor(osmium.io.FileBuffer(data, fmt)).with_locations()
        for obj in processor:
            if isinstance(obj, osmium.osm.Way):
                _take_way(obj, out, bbox)
    except SimcityError:
        raise
    except Exception as err:  # pyosmium raises RuntimeError and friends on bad input
        raise SimcityError(
            f"not a readable OSM file ({type(err).__name__})", file=path, expected=EXPECTED
        ) from None
    if not out.segments:
        raise SimcityError(
            "no drivable roads" + (" inside the bounding box" if bbox else ""),
            file=path,
            field="ways",
            expected=EXPECTED,
        )
    return out


def _take_way(way: Any, out: OsmData, bbox: BBox | None) -> None:
    tags = {t.k: t.v for t in way.tags}
    # A node missing from the extract (a way clipped at its edge) has no location: the
    # road is cut there, never bridged.
    located = [(n.ref, n.lon, n.lat) if n.location.valid() else None for n in way.nodes]
    points = [p for p in located if p is not None]
    if len(points) < 2:
        return
    if tags.get("highway") in ROAD_CLASSES and _drivable(tags):
        inside = [p is not None and (bbox is None or bbox.contains(p[1], p[2])) for p in located]
        forward, backward = _directions(tags)
        for direction, wanted in (("forward", forward), ("backward", backward)):
            if not wanted:
                continue
            attrs = _link_attributes(tags, direction)
            for i in range(len(located) - 1):
                if not (inside[i] and inside[i + 1]):
                    continue
                a, b = located[i], located[i + 1]
                assert a is not None and b is not None  # both inside
                if direction == "backward":
                    a, b = b, a
                if a[0] == b[0]:
                    continue
                out.node_lonlat[a[0]] = (a[1], a[2])
                out.node_lonlat[b[0]] = (b[1], b[2])
                length_km = _haversine_km(a[1], a[2], b[1], b[2])
                out.segments.append(
                    (
                        a[0],
                        b[0],
                        {
                            LINK_LENGTH: length_km,
                            LINK_FREE_FLOW_TIME: 60.0 * length_km / attrs["speed_kmh"],
                            LINK_CAPACITY: attrs["capacity_veh_h"],
                        },
                    )
                )
        if "name" in tags:
            for p in located:
                if p is not None:
                    out.names.setdefault(p[0], tags["name"])
        return
    closed = points[0][0] == points[-1][0] and len(points) >= 4
    if not closed:
        return
    lon = np.array([p[1] for p in points])
    lat = np.array([p[2] for p in points])
    if bbox is not None and not bbox.contains(float(lon.mean()), float(lat.mean())):
        return
    if "building" in tags:
        out.buildings.append(Polygon(lon, lat, tags))
    elif "landuse" in tags:
        out.land_use.append(Polygon(lon, lat, tags))


def _drivable(tags: dict[str, str]) -> bool:
    if tags.get("area") == "yes":
        return False
    return not any(tags.get(k) in _NO_ACCESS for k in ("access", "motor_vehicle", "motorcar"))


def _directions(tags: dict[str, str]) -> tuple[bool, bool]:
    """(forward, backward): which ways along the OSM way traffic may drive."""
    oneway = tags.get("oneway", "").lower()
    if oneway in ("yes", "true", "1"):
        return True, False
    if oneway in ("-1", "reverse"):
        return False, True
    if oneway == "no":
        return True, True
    implied = tags.get("highway") == "motorway" or tags.get("junction") in (
        "roundabout",
        "circular",
    )
    return True, not implied


def _link_attributes(tags: dict[str, str], direction: str) -> dict[str, float]:
    road = ROAD_CLASSES[tags["highway"]]
    speed = parse_speed_kmh(tags.get(f"maxspeed:{direction}")) or parse_speed_kmh(
        tags.get("maxspeed")
    )
    forward, backward = _directions(tags)
    lanes = _positive(tags.get(f"lanes:{direction}"))
    if lanes is None:
        total = _positive(tags.get("lanes"))
        if total is not None:
            lanes = total if not (forward and backward) else max(1.0, math.floor(total / 2))
    lanes = lanes or float(road.lanes)
    return {
        "speed_kmh": speed or road.speed_kmh,
        "lanes": lanes,
        "capacity_veh_h": lanes * road.lane_capacity_veh_h,
    }


def parse_speed_kmh(value: str | None) -> float | None:
    """A ``maxspeed`` tag in km/h, or None where it names no usable speed.

    >>> parse_speed_kmh("30 mph"), parse_speed_kmh("FI:urban"), parse_speed_kmh("none")
    (48.28032, 50.0, None)
    """
    if not value:
        return None
    text = value.strip().lower()
    if ":" in text:
        return IMPLICIT_SPEEDS_KMH.get(text.split(":", 1)[1])
    match = re.match(r"(\d+(?:\.\d+)?)", text)
    if match is None:
        return None
    speed = float(match.group(1)) * (_MPH if "mph" in text else 1.0)
    return speed if speed > 0 else None


def _positive(value: str | None) -> float | None:
    if not value:
        return None
    match = re.match(r"\s*(\d+(?:\.\d+)?)", value)
    number = float(match.group(1)) if match else 0.0
    return number if number > 0 else None


def _haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def road_graph(
    osm: OsmData, *, bpr_b: float = 0.15, bpr_power: float = 4.0, file: str | Path = "<osm>"
) -> nx.DiGraph:
    """The intersection graph of the extract's roads: chains merged, largest strong part."""
    import networkx as nx

    full = nx.DiGraph()
    for u, v, attrs in osm.segments:
        old = full.get_edge_data(u, v)
        if old is None or attrs[LINK_FREE_FLOW_TIME] < old[LINK_FREE_FLOW_TIME]:
            full.add_edge(u, v, **attrs)
    graph = simplify(full, osm.node_lonlat)
    if graph.number_of_edges() == 0:
        raise SimcityError("no road links between intersections", file=file, expected=EXPECTED)
    largest = max(nx.strongly_connected_components(graph), key=len)
    if len(largest) < 2:
        raise SimcityError(
            "no two intersections reach each other by road",
            file=file,
            expected="a connected road network",
        )
    out = nx.DiGraph()
    for node in sorted(largest):
        lon, lat = osm.node_lonlat[node]
        out.add_node(
            node, **{NODE_NAME: osm.names.get(node, str(node)), NODE_LON: lon, NODE_LAT: lat}
        )
    for u, v, d in graph.edges(data=True):
        if u in largest and v in largest:
            out.add_edge(u, v, **d, **{LINK_BPR_B: bpr_b, LINK_BPR_POWER: bpr_power})
    return out


def _pass_through(graph: nx.DiGraph, node: int) -> bool:
    """True if ``node`` only continues one road (so it is not an intersection)."""
    into, out = set(graph.predecessors(node)), set(graph.successors(node))
    if len(into | out) != 2:
        return False
    one_way = len(into) == 1 and len(out) == 1 and into != out
    two_way = len(into) == 2 and into == out
    return one_way or two_way


def simplify(full: nx.DiGraph, lonlat: dict[Any, tuple[float, float]]) -> nx.DiGraph:
    """Merge chains of pass-through nodes into single links that keep their geometry.

    A link of ``full`` may carry its own `LINK_GEOMETRY` (tail to head); else it is straight.
    """
    import networkx as nx

    through = {n for n in full if _pass_through(full, n)}
    graph = nx.DiGraph()
    for start in full:
        if start in through:
            continue
        for first in full.successors(start):
            chain, points = [start], [lonlat[start]]
            length = time = 0.0
            capacity = math.inf
            node, previous = first, start
            while True:
                d = full.edges[previous, node]
                length += d[LINK_LENGTH]
                time += d[LINK_FREE_FLOW_TIME]
                capacity = min(capacity, d[LINK_CAPACITY])
                points.extend(d.get(LINK_GEOMETRY, (None, lonlat[node]))[1:])
                chain.append(node)
                if node not in through or node == start:
                    break
                previous, node = node, next(_onward(full, node, previous))
            end = chain[-1]
            if end == start:
                continue
            old = graph.get_edge_data(start, end)
            if old is not None and old[LINK_FREE_FLOW_TIME] <= time:
                continue
            graph.add_edge(
                start,
                end,
                **{
                    LINK_LENGTH: max(length, 1e-3),
                    LINK_FREE_FLOW_TIME: max(time, 1e-4),
                    LINK_CAPACITY: capacity,
                    LINK_GEOMETRY: tuple(points),
                },
            )
    return graph


def _onward(graph: nx.DiGraph, node: int, previous: int) -> Iterator[int]:
    """The next node of a chain: the successor that is not where the chain came from."""
    successors = list(graph.successors(node))
    yield from (s for s in successors if s != previous)
    yield from successors
