"""TNTP reader: the Sioux Falls reference files, small written networks, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simcity.city.graph import (
    LINK_BPR_B,
    LINK_BPR_POWER,
    LINK_CAPACITY,
    LINK_FREE_FLOW_TIME,
    LINK_LENGTH,
    NODE_IS_ZONE,
    NODE_LAND_USE,
    NODE_NAME,
    NODE_THROUGH,
)
from simcity.city.tntp import DEFAULT_ORIGIN_LAT, DEFAULT_ORIGIN_LON, read_tntp, read_tntp_flows
from simcity.errors import SimcityError
from simcity.traffic.assignment import assign


def sioux_falls_dir() -> Path:
    """Where the shared reference data lives (``shared/`` beside the clone in CI)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "tntp" / "SiouxFalls"


needs_sioux_falls = pytest.mark.skipif(
    not sioux_falls_dir().is_dir(), reason=f"reference data missing: {sioux_falls_dir()}"
)

NET = """<NUMBER OF ZONES> 2
<NUMBER OF NODES> 4
<FIRST THRU NODE> {first_thru}
<NUMBER OF LINKS> {num_links}
<END OF METADATA>

~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll\ttype\t;
{rows}"""
LINKS = [
    "1\t3\t1000\t1.5\t2\t0.15\t4\t0\t0\t1\t;",
    "3\t2\t1000\t1.5\t2\t0.15\t4\t0\t0\t1\t;",
    "2\t4\t800\t1\t1\t0.15\t4\t0\t0\t1\t;",
    "4\t1\t800\t1\t1\t0.15\t4\t0\t0\t1\t;",
    "3\t4\t500\t2\t3\t0.15\t4\t0\t0\t1\t;",
]
TRIPS = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> {total}
<END OF METADATA>

Origin  1
    1 :      0.0;     2 :    300.0;

Origin  2
    1 :    100.0;     2 :      0.0;
"""
NODES = "Node\tX\tY\t;\n1\t0\t0\t;\n2\t1000\t0\t;\n3\t500\t500\t;\n4\t500\t-500\t;\n"


def write_city(
    folder: Path,
    *,
    first_thru: int = 1,
    links: list[str] | None = None,
    num_links: int | None = None,
    total: str = "400.0",
    trips: str | None = None,
    nodes: str | None = NODES,
) -> Path:
    """A valid 4-node, 2-zone TNTP folder, with any part replaced."""
    rows = LINKS if links is None else links
    net = NET.format(first_thru=first_thru, num_links=num_links or len(rows), rows="\n".join(rows))
    (folder / "Tiny_net.tntp").write_text(net)
    (folder / "Tiny_trips.tntp").write_text(TRIPS.format(total=total) if trips is None else trips)
    if nodes is not None:
        (folder / "Tiny_node.tntp").write_text(nodes)
    return folder


@needs_sioux_falls
def test_sioux_falls_reads_as_published() -> None:
    city = read_tntp(sioux_falls_dir())
    assert (city.name, city.num_nodes, city.num_links, city.num_zones) == ("SiouxFalls", 24, 76, 24)
    assert city.zone_index.tolist() == list(range(24))
    assert city.od_veh_h is not None and city.od_veh_h.sum() == pytest.approx(360_600.0)
    assert city.od_veh_h[0, 1] == 100.0 and city.od_veh_h[0, 9] == 1300.0  # Origin 1: 2 and 10
    np.testing.assert_allclose(city.population, city.od_veh_h.sum(axis=1))
    np.testing.assert_allclose(city.jobs, city.od_veh_h.sum(axis=0))
    link = city.graph.edges[1, 2]
    assert link[LINK_CAPACITY] == pytest.approx(25900.20064)
    assert (
        link[LINK_LENGTH],
        link[LINK_FREE_FLOW_TIME],
        link[LINK_BPR_B],
        link[LINK_BPR_POWER],
    ) == (6, 6, 0.15, 4)
    assert city.lon[0] == pytest.approx(-96.77041974) and city.lat[0] == pytest.approx(43.61282792)
    node = city.graph.nodes[1]
    assert (
        node[NODE_THROUGH]
        and node[NODE_IS_ZONE]
        and node[NODE_LAND_USE] == "mixed"
        and node[NODE_NAME] == "1"
    )


@needs_sioux_falls
def test_sioux_falls_best_flows_have_the_published_total_travel_time() -> None:
    flows = read_tntp_flows(sioux_falls_dir() / "SiouxFalls_flow.tntp")
    assert flows.volume_veh_h.size == 76
    assert (flows.init_node[0], flows.term_node[0]) == (1, 2)
    assert float(flows.volume_veh_h @ flows.cost_min) == pytest.approx(7_480_225.34, abs=0.01)


def test_first_thru_node_closes_zones_below_it_and_the_city_assigns(tmp_path: Path) -> None:
    city = read_tntp(write_city(tmp_path, first_thru=3))
    assert [city.graph.nodes[n][NODE_THROUGH] for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert [city.graph.nodes[n][NODE_IS_ZONE] for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert city.population.tolist() == [300, 100, 0, 0] and city.jobs.tolist() == [100, 300, 0, 0]
    assert city.od_veh_h is not None
    result = assign(city.network, city.od_veh_h, rel_gap=1e-6)
    assert result.converged and result.flows_veh_h.sum() > 0


def test_planar_coordinates_are_placed_around_the_origin(tmp_path: Path) -> None:
    default = read_tntp(write_city(tmp_path))
    assert default.lon[2] == pytest.approx(DEFAULT_ORIGIN_LON)
    assert (default.lat[2] + default.lat[3]) / 2 == pytest.approx(DEFAULT_ORIGIN_LAT)
    assert default.lat[2] - default.lat[3] == pytest.approx(10.0 / 110.574)  # 10 km tall by default
    scaled = read_tntp(
        tmp_path, origin_lon=2.35, origin_lat=48.85, scale_km_per_unit=0.002, name="Paris"
    )
    assert scaled.name == "Paris"
    # Nodes 3 and 4 sit 500 units either side of the plane's centre.
    assert scaled.lon[2] == pytest.approx(2.35)
    assert (scaled.lat[2] + scaled.lat[3]) / 2 == pytest.approx(48.85)
    assert scaled.lat[2] - scaled.lat[3] == pytest.approx(1000 * 0.002 / 110.574)


def test_geojson_supplies_lon_lat_when_the_node_file_is_planar(tmp_path: Path) -> None:
    write_city(tmp_path)
    points = [
        {
            "type": "Feature",
            "properties": {"id": n},
            "geometry": {"type": "Point", "coordinates": [n, -n]},
        }
        for n in (1, 2, 3, 4)
    ]
    (tmp_path / "tiny.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": points})
    )
    city = read_tntp(tmp_path)
    assert city.lon.tolist() == [1, 2, 3, 4] and city.lat.tolist() == [-1, -2, -3, -4]


@pytest.mark.parametrize(
    ("change", "file", "words"),
    [
        (
            {"links": [*LINKS[:2], "2\t4\t80x0\t1\t1\t0.15\t4\t;", *LINKS[3:]]},
            "Tiny_net.tntp",
            "line 10, capacity",
        ),
        ({"links": [*LINKS, "3\t9\t500\t2\t3\t0.15\t4\t;"]}, "Tiny_net.tntp", "term_node"),
        ({"links": [*LINKS, LINKS[0]]}, "Tiny_net.tntp", "one link per ordered pair"),
        ({"links": [*LINKS[:4], "3\t4\t500\t2\t3\t;"]}, "Tiny_net.tntp", ">= 7 values"),
        ({"num_links": 6}, "Tiny_net.tntp", "<NUMBER OF LINKS>"),
        (
            {"links": ["3\t4\t-5\t2\t3\t0.15\t4\t;", *LINKS[:4]]},
            "Tiny_net.tntp",
            "line 8, capacity",
        ),
        ({"total": "500.0"}, "Tiny_trips.tntp", "<TOTAL OD FLOW>"),
        (
            {
                "trips": TRIPS.format(total=400).replace(
                    "<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 3"
                )
            },
            "Tiny_trips.tntp",
            "<NUMBER OF ZONES>",
        ),
        (
            {"trips": TRIPS.format(total=400).replace("2 :    300.0", "7 :    300.0")},
            "Tiny_trips.tntp",
            "destination",
        ),
        ({"trips": TRIPS.format(total=400).replace("300.0", "3OO")}, "Tiny_trips.tntp", "trips"),
        (
            {"trips": TRIPS.format(total=400).replace("<END OF METADATA>", "")},
            "Tiny_trips.tntp",
            "<END OF METADATA>",
        ),
        (
            {"nodes": NODES.replace("4\t500\t-500\t;\n", "")},
            "Tiny_node.tntp",
            "no coordinates for node 4",
        ),
        ({"nodes": None}, "", "a *_node.tntp or *.geojson file"),
    ],
)
def test_malformed_files_raise_errors_naming_file_and_field(
    tmp_path: Path, change: dict, file: str, words: str
) -> None:
    write_city(tmp_path, **change)
    with pytest.raises(SimcityError) as error:
        read_tntp(tmp_path)
    assert str(error.value).startswith(str(tmp_path / file).rstrip("/"))
    assert words in str(error.value)


def test_missing_files_and_folders_raise(tmp_path: Path) -> None:
    with pytest.raises(SimcityError, match="no such folder"):
        read_tntp(tmp_path / "absent")
    write_city(tmp_path)
    (tmp_path / "Tiny_trips.tntp").unlink()
    with pytest.raises(SimcityError, match=r"0 files match \*_trips.tntp"):
        read_tntp(tmp_path)
    with pytest.raises(SimcityError, match="no such file"):
        read_tntp_flows(tmp_path / "Tiny_flow.tntp")
    (tmp_path / "bad_flow.tntp").write_text("From To Volume Cost\n1 2 x 3\n")
    with pytest.raises(SimcityError, match="line 2, volume"):
        read_tntp_flows(tmp_path / "bad_flow.tntp")


def _layer(features: list[dict]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features})


def _links_layer(pairs: list[tuple[int, int]], xy: dict[int, tuple[float, float]]) -> str:
    """A link layer as the repository publishes beside the nodes: LineStrings."""
    return _layer(
        [
            {
                "type": "Feature",
                "properties": {"init_node": a, "term_node": b},
                "geometry": {"type": "LineString", "coordinates": [xy[a], xy[b]]},
            }
            for a, b in pairs
        ]
    )


def test_a_link_layer_beside_the_node_layer_is_skipped(tmp_path: Path) -> None:
    """Two GeoJSON layers: the nodes are the layer of Points, whatever the file order."""
    write_city(tmp_path)
    xy = {n: (float(n), float(-n)) for n in (1, 2, 3, 4)}
    points = [
        {
            "type": "Feature",
            "properties": {"id": n},
            "geometry": {"type": "Point", "coordinates": p},
        }
        for n, p in xy.items()
    ]
    (tmp_path / "a_links.geojson").write_text(_links_layer([(1, 3), (3, 2), (2, 4)], xy))
    (tmp_path / "b_nodes.geojson").write_text(_layer(points))
    city = read_tntp(tmp_path)
    assert city.lon.tolist() == [1, 2, 3, 4] and city.lat.tolist() == [-1, -2, -3, -4]
    (tmp_path / "c_more_nodes.geojson").write_text(_layer(points))  # which one? say so
    with pytest.raises(SimcityError, match="2 of its 3 GeoJSON files are layers of Points"):
        read_tntp(tmp_path)


@needs_sioux_falls
def test_sioux_falls_with_its_link_layer_reads(tmp_path: Path) -> None:
    """The shared Sioux Falls folder plus a link layer built from its net file, named to
    sort first: the nodes still come from the Points, the same as without it."""
    source = sioux_falls_dir()
    for path in source.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    alone = read_tntp(tmp_path)
    xy = {k + 1: (float(alone.lon[k]), float(alone.lat[k])) for k in range(alone.num_nodes)}
    pairs = [
        (int(a) + 1, int(b) + 1) for a, b in zip(alone.link_tail, alone.link_head, strict=True)
    ]
    (tmp_path / "SiouxFallsA_links.geojson").write_text(_links_layer(pairs, xy))
    assert sorted(p.name for p in tmp_path.glob("*.geojson"))[0] == "SiouxFallsA_links.geojson"
    both = read_tntp(tmp_path)
    np.testing.assert_array_equal(both.lon, alone.lon)
    np.testing.assert_array_equal(both.lat, alone.lat)
    assert both.num_links == alone.num_links == 76
