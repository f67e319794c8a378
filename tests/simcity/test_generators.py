"""Generated cities: shapes, placement on the globe, connectivity, people and zones."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from simcity.city.build import build_city
from simcity.city.generators import to_km, to_lonlat
from simcity.city.graph import LINK_CAPACITY, LINK_FREE_FLOW_TIME, LINK_LENGTH
from simcity.config.scenario import load_scenario


def test_projection_round_trip() -> None:
    x = np.array([-3.0, 0.0, 5.5])
    y = np.array([2.0, -7.0, 0.1])
    lon, lat = to_lonlat(x, y, -122.4, 37.8)
    x2, y2 = to_km(lon, lat, -122.4, 37.8)
    np.testing.assert_allclose([x2, y2], [x, y], atol=1e-12)


def test_grid_city_has_the_right_shape_and_place() -> None:
    scenario = load_scenario("downtown")
    city = build_city(scenario)
    cfg = scenario.city
    assert city.num_nodes == 15 * 15
    # 2 directions x (rows x (cols-1) + cols x (rows-1)) street segments
    assert city.num_links == 2 * 2 * 15 * 14
    assert abs(city.lon.mean() - cfg.origin_lon) < 1e-9
    assert abs(city.lat.mean() - cfg.origin_lat) < 1e-9
    # A 3.5 km wide grid at 37.8 N spans about 0.0398 degrees of longitude.
    assert city.lon.max() - city.lon.min() == pytest.approx(
        3.5 / (111.32 * np.cos(np.radians(cfg.origin_lat)))
    )
    # One local street link: 0.25 km at 30 km/h = 0.5 min, one lane of 900 veh/h.
    local = [d for _, _, d in city.graph.edges(data=True) if d[LINK_CAPACITY] == 900.0]
    assert local and local[0][LINK_LENGTH] == pytest.approx(0.25)
    assert local[0][LINK_FREE_FLOW_TIME] == pytest.approx(0.5)
    assert city.population.sum() == pytest.approx(cfg.population)
    assert city.jobs.sum() == pytest.approx(cfg.jobs)


def test_ring_radial_city() -> None:
    city = build_city(load_scenario("ringtown"))
    assert city.num_nodes == 1 + 6 * 12
    assert city.num_links == 2 * (6 * 12 + 6 * 12)
    assert nx.is_strongly_connected(city.graph)


def test_random_geometric_city_is_connected_and_seeded() -> None:
    scenario = load_scenario("metro")
    a = build_city(scenario)
    b = build_city(scenario)
    assert a.num_nodes == 2400
    assert nx.is_strongly_connected(a.graph)
    np.testing.assert_array_equal(a.lon, b.lon)
    np.testing.assert_array_equal(a.population, b.population)
    c = build_city(scenario.model_copy(update={"seed": scenario.seed + 1}))
    assert not np.array_equal(a.lon, c.lon)
    assert a.num_zones == round(0.2 * 2400)


def test_city_graph_is_frozen() -> None:
    city = build_city(load_scenario("tiny"))
    with pytest.raises(nx.NetworkXError):
        city.graph.add_node("x")
    with pytest.raises(ValueError):
        city.capacity_veh_h[0] = 1.0
