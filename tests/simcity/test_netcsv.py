"""City folders (nodes.csv, links.csv): a written graph reads back the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from osm_extracts import write_extract

from simcity.city.graph import LINK_GEOMETRY, City
from simcity.city.netcsv import LINKS_FILE, NODES_FILE, read_network, write_network
from simcity.city.osm import read_osm, road_graph
from simcity.city.osm_people import place_people
from simcity.errors import SimcityError


def town(tmp_path: Path) -> City:
    osm = read_osm(write_extract(tmp_path / "town.osm.pbf"))
    graph = road_graph(osm)
    place_people(graph, osm, zone_share=1.0)
    return City("town", graph)


def test_round_trip_keeps_nodes_links_and_geometry(tmp_path: Path) -> None:
    city = town(tmp_path)
    write_network(tmp_path / "town", city.graph)
    back = City("town", read_network(tmp_path / "town"))
    assert back.node_ids == [str(n) for n in city.node_ids]
    for name in ("lon", "lat", "population", "jobs", "capacity_veh_h", "free_flow_time_min"):
        assert getattr(back, name) == pytest.approx(getattr(city, name), rel=1e-6)
    assert (back.land_use == city.land_use).all()
    assert (back.zone_index == city.zone_index).all()
    assert back.link_geometry is not None and city.link_geometry is not None
    for a, b in zip(back.link_geometry, city.link_geometry, strict=True):
        assert len(a) == len(b)
        assert [x for p in a for x in p] == pytest.approx([x for p in b for x in p], abs=1e-6)


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (NODES_FILE, "is_zone", "zone", "missing column"),
        (LINKS_FILE, "\n1,", "\n99,", "unknown node '99'"),
        (LINKS_FILE, ",0.15,", ",fast,", "bpr_b is 'fast'"),
        (NODES_FILE, ",1\n", ",yes\n", "expected 0 or 1"),
    ],
)
def test_bad_city_folders_are_clear_errors(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    folder = tmp_path / "town"
    write_network(folder, town(tmp_path).graph)
    text = (folder / file).read_text()
    assert old in text
    (folder / file).write_text(text.replace(old, new, 1))
    with pytest.raises(SimcityError, match=message):
        read_network(folder)


def test_bad_geometry_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "town"
    city = town(tmp_path)
    graph = city.graph.copy()
    u, v = next(iter(graph.edges))
    graph.edges[u, v][LINK_GEOMETRY] = ((0.0, 0.0), (500.0, 1.0), (0.0, 0.0))
    write_network(folder, graph)
    with pytest.raises(SimcityError, match="WGS84"):
        read_network(folder)
