"""GraphML import, as OSMnx saves it (string attributes, MultiDiGraph, OSM tags)."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from simcity.city.build import build_city
from simcity.city.graph import LINK_CAPACITY, LINK_FREE_FLOW_TIME, LINK_LENGTH
from simcity.city.graphml import read_graphml
from simcity.config.scenario import load_scenario
from simcity.errors import SimcityError


def osmnx_like(path: Path) -> Path:
    """A small street network in the shape `osmnx.save_graphml` writes."""
    g = nx.MultiDiGraph(crs="epsg:4326")
    coords = {
        101: (-0.1276, 51.5072),
        102: (-0.1250, 51.5080),
        103: (-0.1230, 51.5060),
        104: (-0.1290, 51.5050),
        105: (-0.2000, 51.6000),
    }
    for node, (x, y) in coords.items():
        g.add_node(node, x=str(x), y=str(y), street_count="3")

    def road(u: int, v: int, **tags: str) -> None:
        g.add_edge(u, v, osmid="1", oneway=tags.pop("oneway", "False"), **tags)
        if tags.get("reversed") is None and g.edges[u, v, 0]["oneway"] == "False":
            g.add_edge(v, u, osmid="1", oneway="False", **tags)

    road(101, 102, length="190.5", highway="primary", maxspeed="30 mph", lanes="4")
    road(102, 103, length="260.0", highway="residential")
    road(103, 104, length="500.0", highway="['secondary', 'tertiary']", maxspeed="['40', '50']")
    road(104, 101, length="160.0", highway="residential", speed_kph="20.0")
    # A slower parallel edge 101->102 (a service road): collapses to the fastest.
    g.add_edge(101, 102, osmid="2", oneway="True", length="400.0", highway="service")
    # 105 is reachable only one way: not strongly connected, dropped.
    g.add_edge(101, 105, osmid="3", oneway="True", length="9000.0", highway="primary")
    for _, _, d in g.edges(data=True):
        for key, value in list(d.items()):
            d[key] = str(value)
    nx.write_graphml(g, path)
    return path


def test_osmnx_graphml_reads_with_osm_tags(tmp_path: Path) -> None:
    graph = read_graphml(osmnx_like(tmp_path / "city.graphml"))
    assert set(graph.nodes) == {"101", "102", "103", "104"}
    link = graph.edges["101", "102"]
    assert link[LINK_LENGTH] == pytest.approx(0.1905)
    # 30 mph = 48.28 km/h; 0.1905 km takes 0.2367 min.
    assert link[LINK_FREE_FLOW_TIME] == pytest.approx(60 * 0.1905 / (30 * 1.609344))
    # 4 lanes on a two-way street: 2 per direction x 900 veh/h.
    assert link[LINK_CAPACITY] == pytest.approx(1800.0)
    assert graph.edges["104", "101"][LINK_FREE_FLOW_TIME] == pytest.approx(60 * 0.16 / 20)


def test_graphml_scenario_builds_a_city(tmp_path: Path) -> None:
    osmnx_like(tmp_path / "city.graphml")
    (tmp_path / "s.toml").write_text(
        'name = "london"\n[city]\nsource = "graphml"\npath = "city.graphml"\npopulation = 1000\n'
    )
    city = build_city(load_scenario(tmp_path / "s.toml"))
    assert city.num_nodes == 4 and city.num_zones == 4
    assert city.population.sum() == pytest.approx(1000)


def test_graphml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.graphml"
    bad.write_text("<graphml><oops")
    with pytest.raises(SimcityError, match=r"bad\.graphml"):
        read_graphml(bad)
    g = nx.MultiDiGraph()
    g.add_node(1, x="east", y="1.0")
    nx.write_graphml(g, tmp_path / "nox.graphml")
    with pytest.raises(SimcityError, match=r"x/y"):
        read_graphml(tmp_path / "nox.graphml")
    with pytest.raises(SimcityError, match="no such file"):
        read_graphml(tmp_path / "missing.graphml")
