"""Small OpenStreetMap extracts written in the tests with pyosmium's own writer."""

from __future__ import annotations

from pathlib import Path

LON0, LAT0 = 24.94, 60.17
STEP_LON, STEP_LAT = 0.005, 0.0025  # about 280 m each at 60 degrees north

# Node id -> (lon, lat): a square 1 (SW), 4 (SE), 6 (NE), 7 (NW) with points along its
# sides (2, 3 between 1 and 4; 5 between 4 and 6), and a far-off pair 8, 9.
_NODES: dict[int, tuple[float, float]] = {
    1: (LON0, LAT0),
    2: (LON0 + STEP_LON / 3, LAT0 + 0.0002),
    3: (LON0 + 2 * STEP_LON / 3, LAT0 - 0.0002),
    4: (LON0 + STEP_LON, LAT0),
    5: (LON0 + STEP_LON + 0.0004, LAT0 + STEP_LAT / 2),
    6: (LON0 + STEP_LON, LAT0 + STEP_LAT),
    7: (LON0, LAT0 + STEP_LAT),
    8: (LON0 + 0.05, LAT0 + 0.05),
    9: (LON0 + 0.051, LAT0 + 0.05),
}
# OSM stores degrees to 7 decimals; rounded here so expected lengths are exact.
NODES = {k: (round(lon, 7), round(lat, 7)) for k, (lon, lat) in _NODES.items()}
# Way id -> (node ids, tags).
WAYS: dict[int, tuple[list[int], dict[str, str]]] = {
    101: ([1, 2, 3, 4], {"highway": "primary", "lanes": "4", "maxspeed": "60", "name": "Main"}),
    102: ([4, 5, 6], {"highway": "secondary", "oneway": "yes", "maxspeed": "30 mph"}),
    103: ([6, 7], {"highway": "residential"}),
    104: ([1, 7], {"highway": "tertiary", "oneway": "-1", "lanes": "2"}),
    105: ([1, 6], {"highway": "footway"}),
    106: ([4, 7], {"highway": "service"}),
    107: ([6, 1], {"highway": "primary", "access": "private"}),
    108: ([8, 9], {"highway": "residential"}),
}


def square_building(
    first_id: int, lon: float, lat: float, side_m: float
) -> list[tuple[int, float, float]]:
    """Corner nodes of a square building of ``side_m`` metres at (lon, lat), closed."""
    dlat = side_m / 1000 / 111.32
    dlon = dlat / 0.4985  # cos(60.17 degrees)
    corners = [(lon, lat), (lon + dlon, lat), (lon + dlon, lat + dlat), (lon, lat + dlat)]
    return [(first_id + i, x, y) for i, (x, y) in enumerate(corners)]


def write_extract(
    path: Path,
    *,
    nodes: dict[int, tuple[float, float]] | None = None,
    ways: dict[int, tuple[list[int], dict[str, str]]] | None = None,
    buildings: bool = True,
) -> Path:
    """Write an extract (.osm.pbf or .osm by the name) of the square town above."""
    import osmium
    from osmium.osm import mutable

    nodes = dict(NODES if nodes is None else nodes)
    ways = dict(WAYS if ways is None else ways)
    if buildings:
        # 20 m x 20 m, 4 floors of flats near node 1: 1,600 m2 / 40 = 40 residents.
        flats = square_building(1001, LON0 + 0.0002, LAT0 + 0.0002, 20.0)
        # 30 m x 30 m, 2 floors of offices near node 6: 1,800 m2 / 30 = 60 jobs.
        office = square_building(2001, LON0 + STEP_LON - 0.0008, LAT0 + STEP_LAT - 0.0004, 30.0)
        for ring, tags in (
            (flats, {"building": "apartments", "building:levels": "4"}),
            (office, {"building": "office", "building:levels": "2"}),
        ):
            nodes.update({i: (x, y) for i, x, y in ring})
            ways[ring[0][0]] = ([i for i, _, _ in ring] + [ring[0][0]], tags)
    if path.exists():
        path.unlink()
    writer = osmium.SimpleWriter(str(path))
    try:
        for node_id in sorted(nodes):
            writer.add_node(mutable.Node(id=node_id, location=nodes[node_id], version=1))
        for way_id in sorted(ways):
            refs, tags = ways[way_id]
            writer.add_way(mutable.Way(id=way_id, nodes=refs, tags=tags, version=1))
    finally:
        writer.close()
    return path
