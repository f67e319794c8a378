"""Build the `City` a scenario names: generated, TNTP or GraphML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from simcity.city.generators import (
    grid_layout,
    layout_graph,
    populate,
    random_geometric_layout,
    ring_radial_layout,
    to_km,
)
from simcity.city.graph import NODE_NAME, City
from simcity.city.graphml import read_graphml
from simcity.city.netcsv import read_network
from simcity.city.osm import BBox, read_osm, road_graph
from simcity.city.osm_people import place_people
from simcity.city.tntp import read_tntp
from simcity.config.city import (
    GraphmlCity,
    GridCity,
    NetworkCity,
    OsmCity,
    RandomGeometricCity,
    RingRadialCity,
    TntpCity,
)
from simcity.config.scenario import Scenario
from simcity.config.sizes import CitySize, check_city_size
from simcity.errors import SimcityError

if TYPE_CHECKING:
    import networkx as nx


def build_city(scenario: Scenario, *, file: str = "<scenario>") -> City:
    """The city of a scenario; generated cities are seeded by ``scenario.seed``."""
    city = _build_city(scenario, file=file)
    size = CitySize(city.num_nodes, city.num_links, city.num_zones)
    time, traffic = scenario.time, scenario.traffic
    check_city_size(size, time.num_steps, traffic.solve_every_steps, file=file)
    return name_nodes(city, scenario.node_names, file=file) if scenario.node_names else city


def name_nodes(city: City, names: Sequence[tuple[str, str]], *, file: str) -> City:
    """The city with some nodes renamed: ``(node id, name)`` pairs, ids as text."""
    by_id = {str(node): node for node in city.node_ids}
    graph = city.graph.copy()  # unfrozen, nodes and links in the same order
    for key, name in names:
        if key not in by_id:
            sample = ", ".join(list(by_id)[:3])
            raise SimcityError(
                f"no node {key!r} in the city",
                file=file,
                field=f"node_names.{key}",
                expected=f"a node id of the city ({sample}, ...)",
            )
        graph.nodes[by_id[key]][NODE_NAME] = name
    return City(city.name, graph, od_veh_h=city.od_veh_h, source=city.source)


def _build_city(scenario: Scenario, *, file: str) -> City:
    cfg = scenario.city
    rng = np.random.default_rng([scenario.seed, 0xC17])
    if isinstance(cfg, TntpCity):
        kwargs = {}
        if cfg.origin_lon is not None and cfg.origin_lat is not None:
            kwargs = {"origin_lon": cfg.origin_lon, "origin_lat": cfg.origin_lat}
        city = read_tntp(cfg.path, name=scenario.name, **kwargs)
        check_connected(city, file=file)
        return city
    if isinstance(cfg, OsmCity | NetworkCity):
        graph = read_network(cfg.path) if isinstance(cfg, NetworkCity) else osm_graph(cfg)
        city = City(scenario.name, graph, source=str(cfg.path))
        check_connected(city, file=file)
        return city
    if isinstance(cfg, GraphmlCity):
        graph = read_graphml(cfg.path, cfg.roads)
        lon = np.array([d["lon"] for _, d in graph.nodes(data=True)])
        lat = np.array([d["lat"] for _, d in graph.nodes(data=True)])
        x_km, y_km = to_km(lon, lat, float(np.median(lon)), float(np.median(lat)))
        source = str(cfg.path)
    else:
        if isinstance(cfg, GridCity):
            layout = grid_layout(cfg)
        elif isinstance(cfg, RingRadialCity):
            layout = ring_radial_layout(cfg)
        else:
            assert isinstance(cfg, RandomGeometricCity)
            layout = random_geometric_layout(cfg, rng)
        graph = layout_graph(layout, cfg.origin_lon, cfg.origin_lat, cfg.roads)
        x_km, y_km = layout.x_km, layout.y_km
        source = file
    populate(
        graph,
        x_km,
        y_km,
        population=cfg.population,
        jobs=cfg.jobs,
        cbd_km=cfg.cbd_km,
        zone_share=cfg.zone_share,
        rng=rng,
    )
    city = City(scenario.name, graph, source=source)
    check_connected(city, file=file)
    return city


def osm_graph(cfg: OsmCity) -> nx.DiGraph:
    """The peopled intersection graph of an OpenStreetMap extract (`simcity.city.osm`)."""
    bbox = BBox(*cfg.bbox) if cfg.bbox is not None else None
    if cfg.centre_lon is not None and cfg.centre_lat is not None and cfg.radius_km is not None:
        bbox = BBox.around(cfg.centre_lon, cfg.centre_lat, cfg.radius_km)
    osm = read_osm(cfg.path, bbox=bbox)
    graph = road_graph(osm, bpr_b=cfg.bpr_b, bpr_power=cfg.bpr_power, file=cfg.path)
    place_people(graph, osm, zones_path=cfg.zones, zone_share=cfg.zone_share, file=cfg.path)
    return graph


def check_connected(city: City, *, file: str) -> None:
    """Raise unless every zone can reach every other zone (strongly connected zones)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    adjacency = csr_matrix(
        (np.ones(city.num_links), (city.link_tail, city.link_head)),
        shape=(city.num_nodes, city.num_nodes),
    )
    _, labels = connected_components(adjacency, directed=True, connection="strong")
    zone_labels = labels[city.zone_index]
    if np.all(zone_labels == zone_labels[0]):
        return
    if city.od_veh_h is not None:
        od = city.od_veh_h
        cut = (zone_labels[:, None] != zone_labels[None, :]) & (od > 0)
        if not cut.any():
            return
        i, j = np.argwhere(cut)[0]
    else:
        i, j = 0, int(np.flatnonzero(zone_labels != zone_labels[0])[0])
    a, b = city.node_ids[city.zone_index[i]], city.node_ids[city.zone_index[j]]
    raise SimcityError(
        f"disconnected OD pair: no road path between zone {a!r} and zone {b!r}",
        file=file if city.source == "<memory>" else city.source,
        field="city",
        expected="a road path between every pair of zones with demand",
    )
