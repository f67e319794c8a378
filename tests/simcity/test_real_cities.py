"""The bundled real cities: their data as converted, and the SpatiaLite reader behind it."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from simcity.city.build import build_city
from simcity.city.netcsv import read_network
from simcity.config.scenario import bundled_dir, load_scenario

ROOT = Path(__file__).resolve().parents[2]
# The numbers scripts/convert_real_cities.py printed; re-running it must reproduce them.
EXPECTED = {
    "helsinki": {"nodes": 141, "links": 289, "zones": 56},
    "coquimbo": {"nodes": 1446, "links": 2937, "zones": 127},
}


def convert_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "convert", ROOT / "scripts/convert_real_cities.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["convert"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_city_builds_with_street_geometry(name: str) -> None:
    city = build_city(load_scenario(name))  # checks every zone reaches every other
    want = EXPECTED[name]
    assert (city.num_nodes, city.num_links, city.num_zones) == (
        want["nodes"],
        want["links"],
        want["zones"],
    )
    assert city.link_geometry is not None
    lengths = [len(points) for points in city.link_geometry]
    assert min(lengths) >= 2 and max(lengths) > 2  # some streets bend
    for k in range(0, city.num_links, 97):  # ends of each path are the link's nodes
        points = city.link_geometry[k]
        tail, head = city.link_tail[k], city.link_head[k]
        assert points[0] == (city.lon[tail], city.lat[tail])
        assert points[-1] == (city.lon[head], city.lat[head])
    one_way = sum(not city.graph.has_edge(v, u) for u, v in city.graph.edges)
    assert one_way > 0  # one-way streets survived the conversion


def test_real_city_data_carries_source_and_licence() -> None:
    for name in EXPECTED:
        folder = bundled_dir() / "data" / name
        text = (folder / "ATTRIBUTION.md").read_text()
        assert "OpenStreetMap contributors" in text and "ODbL" in text
    assert "AequilibraE" in (bundled_dir() / "data/coquimbo/LICENSE-aequilibrae.txt").read_text()


def test_coquimbo_keeps_the_zone_populations() -> None:
    city = build_city(load_scenario("coquimbo"))
    zones = np.loadtxt(bundled_dir() / "data/coquimbo/zones.csv", delimiter=",", skiprows=1)
    assert len(zones) == 133
    assert city.population.sum() == pytest.approx(zones[:, 3].sum(), rel=1e-6)
    assert city.population.sum() == pytest.approx(451_899, abs=1)
    assert city.jobs.sum() == pytest.approx(0.45 * city.population.sum(), rel=1e-6)


def test_helsinki_people_come_from_buildings() -> None:
    graph = read_network(bundled_dir() / "data/helsinki")
    pop = sum(d["population"] for _, d in graph.nodes(data=True))
    jobs = sum(d["jobs"] for _, d in graph.nodes(data=True))
    assert jobs > pop > 0  # the city centre: more workplaces than homes


def _blob(kind: int, body: bytes) -> bytes:
    return (
        b"\x00\x01"
        + struct.pack("<i", 4326)
        + bytes(32)
        + b"\x7c"
        + struct.pack("<i", kind)
        + body
        + b"\xfe"
    )


def test_spatialite_blobs_parse_to_their_points() -> None:
    convert = convert_script()
    parse = convert.spatialite_geometry
    assert parse(_blob(1, struct.pack("<2d", -71.3, -29.9))) == [[(-71.3, -29.9)]]
    line = struct.pack("<i6d", 3, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    assert parse(_blob(2, line)) == [[(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]]
    ring = struct.pack("<i8d", 4, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0)
    polygon = struct.pack("<i", 1) + ring
    multi = struct.pack("<i", 2) + (b"\x69" + struct.pack("<i", 3) + polygon) * 2
    rings = parse(_blob(6, multi))
    assert len(rings) == 2 and rings[0] == [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]
    with pytest.raises(ValueError, match="not a SpatiaLite"):
        parse(b"\x01" + _blob(1, struct.pack("<2d", 0, 0))[1:])
    with pytest.raises(ValueError, match="class 1000002"):
        parse(_blob(1000002, line))
