"""OpenStreetMap import: a small extract written here reads to the expected graph."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from osm_extracts import LAT0, LON0, NODES, WAYS, write_extract

from simcity.city.build import build_city
from simcity.city.graph import (
    LINK_CAPACITY,
    LINK_FREE_FLOW_TIME,
    LINK_GEOMETRY,
    LINK_LENGTH,
    NODE_IS_ZONE,
    NODE_JOBS,
    NODE_POPULATION,
)
from simcity.city.osm import BBox, parse_speed_kmh, read_osm, road_graph
from simcity.city.osm_people import place_people
from simcity.config.scenario import load_scenario
from simcity.errors import SimcityError


def haversine_km(a: int, b: int) -> float:
    (lon1, lat1), (lon2, lat2) = NODES[a], NODES[b]
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def flat(points: Iterable[tuple[float, float]]) -> list[float]:
    return [x for point in points for x in point]


@pytest.fixture(params=["town.osm.pbf", "town.osm"])
def extract(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return write_extract(tmp_path / request.param)


def test_roads_read_to_intersections_with_one_ways_speeds_and_lanes(extract: Path) -> None:
    graph = road_graph(read_osm(extract))
    # Footway, service road, private road and the far-off pair are gone; 2, 3, 5 merged.
    assert sorted(graph.nodes) == [1, 4, 6, 7]
    assert sorted(graph.edges) == [(1, 4), (4, 1), (4, 6), (6, 7), (7, 1), (7, 6)]
    main = graph.edges[1, 4]  # primary, lanes=4 both ways -> 2 a direction, 60 km/h
    length = haversine_km(1, 2) + haversine_km(2, 3) + haversine_km(3, 4)
    assert main[LINK_LENGTH] == pytest.approx(length, rel=1e-6)
    assert main[LINK_FREE_FLOW_TIME] == pytest.approx(60 * length / 60.0, rel=1e-6)
    assert main[LINK_CAPACITY] == 2 * 1000.0
    assert flat(main[LINK_GEOMETRY]) == pytest.approx(flat(NODES[n] for n in (1, 2, 3, 4)))
    backward = graph.edges[4, 1][LINK_GEOMETRY]
    assert flat(backward) == pytest.approx(flat(NODES[n] for n in (4, 3, 2, 1)))
    one_way = graph.edges[4, 6]  # secondary, oneway=yes, 30 mph, one lane by default
    length = haversine_km(4, 5) + haversine_km(5, 6)
    assert one_way[LINK_FREE_FLOW_TIME] == pytest.approx(60 * length / (30 * 1.609344))
    assert one_way[LINK_CAPACITY] == 900.0
    assert not graph.has_edge(6, 4)
    reverse = graph.edges[7, 1]  # tertiary drawn 1 -> 7 with oneway=-1; all 2 lanes one way
    assert reverse[LINK_CAPACITY] == 2 * 800.0
    assert reverse[LINK_FREE_FLOW_TIME] == pytest.approx(60 * haversine_km(1, 7) / 40.0)
    assert graph.edges[6, 7][LINK_FREE_FLOW_TIME] == pytest.approx(60 * haversine_km(6, 7) / 30)


def test_chain_keeps_its_bottleneck_and_sums_time(tmp_path: Path) -> None:
    ways = dict(WAYS)
    # The south side in two ways: a fast two-lane part, then a slow one-lane part.
    ways[101] = ([1, 2, 3], {"highway": "primary", "lanes": "4", "maxspeed": "60"})
    ways[109] = ([3, 4], {"highway": "primary", "lanes": "2", "maxspeed": "30"})
    graph = road_graph(read_osm(write_extract(tmp_path / "a.osm.pbf", ways=ways)))
    link = graph.edges[1, 4]
    fast, slow = haversine_km(1, 2) + haversine_km(2, 3), haversine_km(3, 4)
    assert link[LINK_FREE_FLOW_TIME] == pytest.approx(fast + 2 * slow, rel=1e-6)
    assert link[LINK_CAPACITY] == 1000.0
    assert len(link[LINK_GEOMETRY]) == 4


def test_buildings_give_people_and_jobs_by_the_rule(extract: Path) -> None:
    osm = read_osm(extract)
    graph = road_graph(osm)
    place_people(graph, osm, zone_share=1.0)
    # 20 m square x 4 floors / 40 m2 per resident; 30 m square x 2 floors / 30 m2 per job.
    assert graph.nodes[1][NODE_POPULATION] == pytest.approx(40.0, rel=0.01)
    assert graph.nodes[6][NODE_JOBS] == pytest.approx(60.0, rel=0.01)
    assert [n for n in graph if graph.nodes[n][NODE_IS_ZONE]] == [1, 6]
    place_people(graph, osm, zone_share=0.5)  # the busier of the two peopled nodes
    assert [n for n in graph if graph.nodes[n][NODE_IS_ZONE]] == [6]


def test_zones_file_places_people_and_jobs(tmp_path: Path) -> None:
    osm = read_osm(write_extract(tmp_path / "a.osm.pbf"))
    graph = road_graph(osm)
    zones = tmp_path / "zones.csv"
    zones.write_text(
        f"lon,lat,population,employment\n{LON0},{LAT0 + 0.0023},500,10\n"
        f"{LON0 + 0.0049},{LAT0},20,700\n"
    )
    place_people(graph, osm, zones_path=zones)
    assert graph.nodes[7][NODE_POPULATION] == 500 and graph.nodes[4][NODE_JOBS] == 700
    assert [n for n in graph if graph.nodes[n][NODE_IS_ZONE]] == [4, 7]
    geojson = tmp_path / "zones.geojson"
    square = [[LON0 - 1e-3, LAT0 - 1e-3], [LON0 + 1e-3, LAT0 - 1e-3], [LON0 + 1e-3, LAT0 + 1e-3]]
    geojson.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
        '{"population": 7, "employment": 3}, "geometry": {"type": "Polygon", "coordinates": '
        f"[{[*square, [LON0 - 1e-3, LAT0 + 1e-3], square[0]]}]}}}}]}}"
    )
    place_people(graph, osm, zones_path=geojson)
    assert graph.nodes[1][NODE_POPULATION] == 7 and graph.nodes[1][NODE_JOBS] == 3


def test_bbox_crops_the_roads(tmp_path: Path) -> None:
    path = write_extract(tmp_path / "a.osm.pbf")
    box = BBox(LON0 - 0.001, LAT0 - 0.001, LON0 + 0.006, LAT0 + 0.001)  # the south side only
    graph = road_graph(read_osm(path, bbox=box))
    assert sorted(graph.edges) == [(1, 4), (4, 1)]


def test_scenario_with_an_osm_city_builds(tmp_path: Path) -> None:
    write_extract(tmp_path / "town.osm.pbf")
    (tmp_path / "town.toml").write_text(
        'name = "town"\n[city]\nsource = "osm"\npath = "town.osm.pbf"\nzone_share = 1.0\n'
        f"centre_lon = {LON0 + 0.0025}\ncentre_lat = {LAT0 + 0.00125}\nradius_km = 1.0\n"
    )
    city = build_city(load_scenario(tmp_path / "town.toml"))
    assert city.num_nodes == 4 and city.num_links == 6 and city.num_zones == 2
    assert city.link_geometry is not None and len(city.link_geometry[0]) >= 2


def test_scenario_zones_file_is_read_relative_to_the_scenario(tmp_path: Path) -> None:
    write_extract(tmp_path / "town.osm.pbf", buildings=False)
    (tmp_path / "zones.csv").write_text(f"lon,lat,population,jobs\n{LON0},{LAT0},100,50\n")
    (tmp_path / "town.toml").write_text(
        'name = "town"\n[city]\nsource = "osm"\npath = "town.osm.pbf"\nzones = "zones.csv"\n'
    )
    city = build_city(load_scenario(tmp_path / "town.toml"))
    assert city.num_zones == 1 and city.population.sum() == 100 and city.jobs.sum() == 50
    (tmp_path / "town.toml").write_text(
        'name = "town"\n[city]\nsource = "osm"\npath = "town.osm.pbf"\nzones = "none.csv"\n'
    )
    with pytest.raises(SimcityError, match=r"none\.csv"):
        load_scenario(tmp_path / "town.toml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable OSM file|no drivable roads"),
        (b"\x00\x01 not a pbf at all" * 10, "not a readable OSM file"),
    ],
)
def test_bad_bytes_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.osm.pbf"
    path.write_bytes(content)
    with pytest.raises(SimcityError, match=message) as info:
        read_osm(path)
    assert info.value.file == str(path)


def test_extracts_without_roads_or_people_are_clear_errors(tmp_path: Path) -> None:
    paths = write_extract(tmp_path / "foot.osm", ways={105: WAYS[105]}, buildings=False)
    with pytest.raises(SimcityError, match="no drivable roads"):
        read_osm(paths)
    with pytest.raises(SimcityError, match="no drivable roads inside the bounding box"):
        read_osm(write_extract(tmp_path / "a.osm.pbf"), bbox=BBox(0.0, 0.0, 1.0, 1.0))
    bare = write_extract(tmp_path / "bare.osm.pbf", buildings=False)
    osm = read_osm(bare)
    with pytest.raises(SimcityError, match="no buildings or land use"):
        place_people(road_graph(osm), osm)
    with pytest.raises(SimcityError, match="no two intersections"):
        road_graph(read_osm(write_extract(tmp_path / "1.osm", ways={102: WAYS[102]})))
    with pytest.raises(SimcityError, match="no such file"):
        read_osm(tmp_path / "missing.osm.pbf")


def test_bad_zones_files_are_clear_errors(tmp_path: Path) -> None:
    osm = read_osm(write_extract(tmp_path / "a.osm.pbf"))
    graph = road_graph(osm)
    cases = {
        "no_jobs.csv": ("lon,lat,population\n24.9,60.1,5\n", "missing column"),
        "bad.csv": ("lon,lat,population,jobs\n24.9,60.1,-5,1\n", "bad point, population"),
        "text.csv": ("lon,lat,population,jobs\n24.9,60.1,many,1\n", "population is 'many'"),
        "empty.geojson": ('{"type": "FeatureCollection", "features": []}', "no zones"),
        "line.geojson": ('{"features": [{"geometry": {"type": "LineString"}}]}', "Point or"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(SimcityError, match=message):
            place_people(graph, osm, zones_path=tmp_path / name)


def test_scenario_area_is_bbox_or_centre_not_both(tmp_path: Path) -> None:
    write_extract(tmp_path / "town.osm.pbf")
    (tmp_path / "town.toml").write_text(
        'name = "town"\n[city]\nsource = "osm"\npath = "town.osm.pbf"\n'
        "bbox = [24.9, 60.1, 25.0, 60.2]\nradius_km = 1.0\n"
    )
    with pytest.raises(SimcityError, match="bbox"):
        load_scenario(tmp_path / "town.toml")


def test_without_pyosmium_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_extract(tmp_path / "a.osm.pbf")
    monkeypatch.setitem(sys.modules, "osmium", None)
    with pytest.raises(SimcityError, match=r"simcity\[osm\]"):
        read_osm(path)


def test_maxspeed_forms() -> None:
    assert parse_speed_kmh("50") == 50.0
    assert parse_speed_kmh("20 mph") == pytest.approx(32.18688)
    assert parse_speed_kmh("RU:rural") == 80.0
    assert parse_speed_kmh("signals") is None and parse_speed_kmh("0") is None


def test_a_node_missing_from_the_extract_cuts_its_road(tmp_path: Path) -> None:
    ways = dict(WAYS)
    ways[101] = ([1, 2, 99, 3, 4], WAYS[101][1])  # node 99 is not in the file
    ways[110] = ([1, 4], {"highway": "residential"})  # so 1 and 4 still connect
    graph = road_graph(read_osm(write_extract(tmp_path / "clipped.osm.pbf", ways=ways)))
    link = graph.edges[1, 4]
    assert link[LINK_FREE_FLOW_TIME] == pytest.approx(60 * haversine_km(1, 4) / 30, rel=1e-6)
    assert len(link[LINK_GEOMETRY]) == 2  # the residential street, not 1-2-3-4 bridged
