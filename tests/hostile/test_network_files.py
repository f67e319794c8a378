"""Hostile network files: TNTP folders (net, trips, node, GeoJSON, flow files) and GraphML.

Every case must end at once in a `SimcityError` naming the file (and the line, edge or
field where there is one) or in a valid city; hypothesis mutates valid files the same way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hostile_files import (
    FUZZ_EXAMPLES,
    LINKS,
    NODES,
    SPECIAL,
    TRIPS,
    error_or_value,
    net_text,
    refused,
    tntp_folder,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simcity.city.graph import LINK_CAPACITY, LINK_FREE_FLOW_TIME, LINK_LENGTH, City
from simcity.city.graphml import read_graphml
from simcity.city.osm_values import MAX_SPEED_KMH, MIN_SPEED_KMH, MPH_KMH
from simcity.city.tntp import read_tntp, read_tntp_flows

FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def valid_city(city: City) -> None:
    """What every city read from a file must be: finite, positive where it divides."""
    assert np.all(np.isfinite(city.lon)) and np.all(np.isfinite(city.lat))
    assert np.all(city.free_flow_time_min > 0) and np.all(np.isfinite(city.free_flow_time_min))
    assert np.all(city.network.capacity_veh_h > 0) and np.all(np.isfinite(city.length_km))
    assert city.od_veh_h is None or np.all(np.isfinite(city.od_veh_h))


# --- TNTP net files ----------------------------------------------------------------------


def with_link(row: str, at: int = 0) -> str:
    rows = list(LINKS)
    rows[at] = row
    return net_text(rows)


NET_CASES = {
    # Header promises the files do not keep: refused before allocating for them.
    "1e12 nodes": (net_text(nodes=10**12), "Tiny_node.tntp: no coordinates for node 5 and"),
    "1e12 nodes and zones": (net_text(nodes=10**12, zones=10**12), "Tiny_node.tntp: no coord"),
    "18-digit nodes": (net_text(nodes="9" * 18), "999,999,999,999,999,999 in <NUMBER OF NODES>"),
    "19-digit nodes": (net_text(nodes="9" * 19), "<NUMBER OF NODES>"),
    "4300-digit nodes": (net_text(nodes="9" * 4300), "<NUMBER OF NODES>"),
    "zero nodes": (net_text(nodes=0), "<NUMBER OF ZONES>"),
    "negative nodes": (net_text(nodes=-4), "<NUMBER OF ZONES>"),
    "zero zones": (net_text(zones=0), "<NUMBER OF ZONES>"),
    "more zones than nodes": (net_text(zones=5), "<NUMBER OF ZONES>"),
    "nodes as words": (net_text(nodes="many"), "<NUMBER OF NODES>"),
    "nodes as float": (net_text(nodes="4.0"), "<NUMBER OF NODES>"),
    "nodes in exponent": (net_text(nodes="1e3"), "<NUMBER OF NODES>"),
    "nodes blank": (net_text(nodes=""), "<NUMBER OF NODES>"),
    "nodes in Arabic digits": (net_text(nodes="٤"), "<NUMBER OF NODES>"),
    "nodes superscript": (net_text(nodes="²"), "<NUMBER OF NODES>"),
    "links miscounted": (net_text(num_links=9), "<NUMBER OF LINKS>"),
    "1e12 links promised": (net_text(num_links=10**12), "<NUMBER OF LINKS>"),
    "no end of metadata": (net_text().replace("<END OF METADATA>", ""), "<END OF METADATA>"),
    "no metadata at all": ("\n".join(LINKS), "line 1"),
    "missing node count": (net_text().replace("<NUMBER OF NODES> 4\n", ""), "missing"),
    # Link values that would make NaN or make no sense.
    "zero free-flow time everywhere": (
        net_text([r.replace("\t2\t0.15", "\t0\t0.15") for r in LINKS[:2]] + LINKS[2:]),
        "line 8, free_flow_time",
    ),
    "zero free-flow time, one link": (with_link("2\t4\t800\t1\t0\t0.15\t4\t;", 2), "line 10"),
    "negative free-flow time": (with_link("1\t3\t1000\t1.5\t-2\t0.15\t4\t;"), "free_flow_time"),
    "NaN free-flow time": (with_link("1\t3\t1000\t1.5\tnan\t0.15\t4\t;"), "free_flow_time"),
    "inf free-flow time": (with_link("1\t3\t1000\t1.5\tinf\t0.15\t4\t;"), "free_flow_time"),
    "1e400 free-flow time": (with_link("1\t3\t1000\t1.5\t1e400\t0.15\t4\t;"), "free_flow_time"),
    "zero capacity": (with_link("1\t3\t0\t1.5\t2\t0.15\t4\t;"), "line 8, capacity"),
    "negative capacity": (with_link("1\t3\t-5\t1.5\t2\t0.15\t4\t;"), "capacity"),
    "-inf capacity": (with_link("1\t3\t-inf\t1.5\t2\t0.15\t4\t;"), "capacity"),
    "capacity with comma": (with_link("1\t3\t1,000\t1.5\t2\t0.15\t4\t;"), "capacity"),
    "negative length": (with_link("1\t3\t1000\t-1.5\t2\t0.15\t4\t;"), "length"),
    "negative b": (with_link("1\t3\t1000\t1.5\t2\t-0.15\t4\t;"), "line 8, b"),
    "zero power": (with_link("1\t3\t1000\t1.5\t2\t0.15\t0\t;"), "line 8, power"),
    "power below one": (with_link("1\t3\t1000\t1.5\t2\t0.15\t0.5\t;"), "power"),
    "node zero": (with_link("0\t3\t1000\t1.5\t2\t0.15\t4\t;"), "init_node"),
    "unknown node": (with_link("1\t9\t1000\t1.5\t2\t0.15\t4\t;"), "term_node"),
    "fractional node": (with_link("1.5\t3\t1000\t1.5\t2\t0.15\t4\t;"), "init_node"),
    "negative node": (with_link("-1\t3\t1000\t1.5\t2\t0.15\t4\t;"), "init_node"),
    "1e300 node": (with_link("1e300\t3\t1000\t1.5\t2\t0.15\t4\t;"), "init_node"),
    "word node": (with_link("one\t3\t1000\t1.5\t2\t0.15\t4\t;"), "init_node"),
    "duplicate link": (net_text([*LINKS, LINKS[0]]), "one link per ordered pair"),
    "short row": (with_link("1\t3\t1000\t;"), ">= 7 values"),
    "megabyte line": (with_link("1\t3\t" + "9" * 1_000_000 + "x\t1\t2\t0.15\t4;"), "capacity"),
    "control characters": (with_link("1\t3\t10\x1b[2J00\t1.5\t2\t0.15\t4\t;"), "capacity"),
}


@pytest.mark.parametrize("case", list(NET_CASES))
def test_hostile_net_file(tmp_path: Path, case: str) -> None:
    text, words = NET_CASES[case]
    folder = tntp_folder(tmp_path / "city", net=text)
    where = "Tiny_node.tntp" if "Tiny_node" in words or "in <NUMBER" in words else "Tiny_net.tntp"
    error = refused(lambda: read_tntp(folder), where, words)
    assert "\x1b" not in str(error)  # quoted values are escaped


def test_zone_count_past_memory_is_refused_before_allocating(tmp_path: Path) -> None:
    """30,000 node rows really in the file, but a 7.2 GB trips matrix: refused at once."""
    nodes = "Node X Y ;\n" + "".join(f"{k} {k} 0 ;\n" for k in range(1, 30_001))
    folder = tntp_folder(tmp_path / "city", net=net_text(nodes=30_000, zones=30_000), nodes=nodes)
    refused(lambda: read_tntp(folder), "Tiny_net.tntp", "30,000 zones", "<NUMBER OF ZONES>")


@pytest.mark.parametrize(
    ("case", "text"),
    [
        ("CRLF line ends", net_text().replace("\n", "\r\n")),
        ("byte-order mark", "\ufeff" + net_text()),
        ("zero length", with_link("1\t3\t1000\t0\t2\t0.15\t4\t;")),
        ("extra columns", with_link("1\t3\t1000\t1.5\t2\t0.15\t4\t0\t0\t1\t;")),
        ("comments everywhere", net_text().replace(";\n", "; ~ a note ~ another\n")),
    ],
)
def test_unusual_but_valid_net_files_read(tmp_path: Path, case: str, text: str) -> None:
    valid_city(read_tntp(tntp_folder(tmp_path / "city", net=text)))


# --- TNTP trips files --------------------------------------------------------------------


def trips_with(old: str, new: str) -> str:
    assert old in TRIPS
    return TRIPS.replace(old, new)


TRIPS_CASES = {
    "origin zero": (trips_with("Origin  1", "Origin  0"), "line 5, Origin"),
    "origin past zones": (trips_with("Origin  1", "Origin  3"), "Origin"),
    "origin superscript": (trips_with("Origin  1", "Origin  ²"), "Origin"),
    "origin 5000 digits": (trips_with("Origin  1", "Origin  " + "9" * 5000), "Origin"),
    "origin word": (trips_with("Origin  1", "Origin  one"), "Origin"),
    "destination unknown": (trips_with("2 :    300.0", "7 :    300.0"), "destination"),
    "destination negative": (trips_with("2 :    300.0", "-2 :    300.0"), "destination"),
    "negative trips": (trips_with("300.0", "-300.0"), "line 6, trips"),
    "NaN trips": (trips_with("300.0", "nan"), "trips"),
    "inf trips": (trips_with("300.0", "inf"), "trips"),
    "trips past float range": (
        trips_with("1 :      0.0;", "1 : 1e308;").replace("<TOTAL OD FLOW> 400.0\n", "")
        + "Origin 1\n  2 : 1e308;\n",
        "more than a float holds",
    ),
    "word trips": (trips_with("300.0", "lots"), "trips"),
    "entry without colon": (trips_with("2 :    300.0", "2 300.0"), "'dest : trips;'"),
    "entry with two colons": (trips_with("2 :    300.0", "2 : 3 : 300.0"), "trips"),
    "demand before origin": (trips_with("Origin  1\n", ""), "before any Origin line"),
    "total mismatch": (trips_with("400.0", "500.0"), "<TOTAL OD FLOW>"),
    "total NaN": (trips_with("400.0", "nan"), "<TOTAL OD FLOW>"),
    "total inf": (trips_with("400.0", "inf"), "<TOTAL OD FLOW>"),
    "total word": (trips_with("400.0", "four hundred"), "<TOTAL OD FLOW>"),
    "zones mismatch": (trips_with("<NUMBER OF ZONES> 2", "<NUMBER OF ZONES> 3"), "as the net"),
    "zones missing": (trips_with("<NUMBER OF ZONES> 2\n", ""), "<NUMBER OF ZONES>"),
    "no end of metadata": (trips_with("<END OF METADATA>", ""), "<END OF METADATA>"),
    "empty": ("", "<END OF METADATA>"),
}


@pytest.mark.parametrize("case", list(TRIPS_CASES))
def test_hostile_trips_file(tmp_path: Path, case: str) -> None:
    text, words = TRIPS_CASES[case]
    folder = tntp_folder(tmp_path / "city", trips=text)
    refused(lambda: read_tntp(folder), "Tiny_trips.tntp", words)


# --- TNTP node coordinates: node files and GeoJSON ---------------------------------------

NODE_CASES = {
    "missing row": (NODES.replace("4\t500\t-500\t;\n", ""), "no coordinates for node 4"),
    "only a header": ("Node X Y ;\n", "no coordinates for node 1 and 3 more"),
    "empty": ("", "no coordinates for node 1"),
    "node zero": (NODES + "0\t1\t1\t;\n", "line 6"),
    "node past count": (NODES + "99\t1\t1\t;\n", "unknown node 99"),
    "fractional node": (NODES + "2.5\t1\t1\t;\n", "unknown node 2.5"),
    "NaN coordinate": (NODES.replace("1000\t0", "nan\t0"), "line 3, x"),
    "inf coordinate": (NODES.replace("1000\t0", "inf\t0"), "line 3, x"),
    "1e300 coordinate": (NODES.replace("1000\t0", "1e300\t0"), "coordinates within"),
    "word coordinate": (NODES.replace("1000\t0", "east\t0"), "line 3, x"),
    "two values": (NODES.replace("1000\t0", "1000"), ">= 3 values"),
    "binary": ("\x00\x01\x02", "NUL"),
}


@pytest.mark.parametrize("case", list(NODE_CASES))
def test_hostile_node_file(tmp_path: Path, case: str) -> None:
    text, words = NODE_CASES[case]
    folder = tntp_folder(tmp_path / "city", nodes=text)
    refused(lambda: read_tntp(folder), "Tiny_node.tntp", words)


def feature(node: object, x: object = -96.7, y: object = 43.5, kind: str = "Point") -> dict:
    return {
        "type": "Feature",
        "properties": {"id": node},
        "geometry": {"type": kind, "coordinates": [x, y]},
    }


def collection(*features: object) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


GOOD_FEATURES = [feature(k, -96.7 + k / 100, 43.5) for k in (1, 2, 3, 4)]
GEOJSON_CASES = {
    "not JSON": ("{oops", "not a GeoJSON FeatureCollection"),
    "100,000 nested lists": ("[" * 100_000 + "]" * 100_000, "not a GeoJSON FeatureCollection"),
    "no features": ('{"type": "FeatureCollection"}', "not a GeoJSON FeatureCollection"),
    "features a number": ('{"features": 5}', "features"),
    "features a string": ('{"features": "abc"}', "features"),
    "features a dict": ('{"features": {"a": 1}}', "features"),
    "feature a number": (collection(*GOOD_FEATURES[:3], 7), "features[3]"),
    "id missing": (collection(*GOOD_FEATURES[:3], {"geometry": {}}), "features[3]"),
    "id a word": (collection(*GOOD_FEATURES[:3], feature("four")), "features[3]"),
    "id NaN": (collection(*GOOD_FEATURES[:3], feature(math.nan)), "features[3]"),
    "id Infinity": (collection(*GOOD_FEATURES[:3], feature(math.inf)), "features[3]"),
    "id true": (collection(*GOOD_FEATURES[:3], feature(True)), "features[3]"),
    "id 1e300": (collection(*GOOD_FEATURES[:3], feature(1e300)), "unknown node"),
    "coordinate NaN": (collection(*GOOD_FEATURES[:3], feature(4, math.nan)), "features[3]"),
    "coordinate a list": (collection(*GOOD_FEATURES[:3], feature(4, [1])), "features[3]"),
    "no coordinates": (collection(*GOOD_FEATURES[:3], feature(4, None, None)), "features[3]"),
    "a line string": (collection(*GOOD_FEATURES[:3], feature(4, kind="LineString")), "[3]"),
    "a node missing": (collection(*GOOD_FEATURES[:3]), "no coordinates for node 4"),
    "not lon/lat": (collection(*GOOD_FEATURES[:3], feature(4, 500.0, 0.0)), "not lon/lat"),
}


@pytest.mark.parametrize("case", list(GEOJSON_CASES))
def test_hostile_geojson_file(tmp_path: Path, case: str) -> None:
    text, words = GEOJSON_CASES[case]
    folder = tntp_folder(tmp_path / "city", geojson=text)  # the node file is planar
    refused(lambda: read_tntp(folder), "Tiny.geojson", words)


def test_geojson_gives_lon_lat_to_a_planar_node_file(tmp_path: Path) -> None:
    city = read_tntp(tntp_folder(tmp_path / "city", geojson=collection(*GOOD_FEATURES)))
    valid_city(city)
    assert city.lon.tolist() == pytest.approx([-96.69, -96.68, -96.67, -96.66])


# --- special files and folders -----------------------------------------------------------


@pytest.mark.parametrize("special", list(SPECIAL))
@pytest.mark.parametrize(
    "name", ["Tiny_net.tntp", "Tiny_trips.tntp", "Tiny_node.tntp", "Tiny.geojson"]
)
def test_special_files_end_at_once(tmp_path: Path, special: str, name: str) -> None:
    folder = tntp_folder(tmp_path / "city", geojson=collection(*GOOD_FEATURES))
    SPECIAL[special](folder / name)
    refused(lambda: read_tntp(folder), name, "not a regular file")


def test_files_that_are_not_utf8_text_are_refused(tmp_path: Path) -> None:
    folder = tntp_folder(tmp_path / "city")
    (folder / "Tiny_net.tntp").write_bytes(b"<NUMBER OF NODES> 4\n\xff\xfe\xfa\n")
    refused(lambda: read_tntp(folder), "Tiny_net.tntp", "not UTF-8")
    (folder / "Tiny_net.tntp").write_bytes(net_text().encode("utf-16"))
    refused(lambda: read_tntp(folder), "Tiny_net.tntp", "UTF-16")


FOLDER_CASES = {
    "absent": (lambda root: root / "absent", "no such folder"),
    "a file": (lambda root: tntp_folder(root) / "Tiny_net.tntp", "no such folder"),
    "a FIFO": (lambda root: SPECIAL["fifo"](root / "pipe"), "no such folder"),
    "empty": (lambda root: root, "0 files match *_net.tntp"),
    "two net files": (
        lambda root: (tntp_folder(root) / "Other_net.tntp").write_text(net_text()) and root,
        "2 files match *_net.tntp",
    ),
    "no trips": (lambda root: tntp_folder(root, trips=None), "0 files match *_trips.tntp"),
    "no coordinates": (lambda root: tntp_folder(root, nodes=None), "no node coordinates"),
}


@pytest.mark.parametrize("case", list(FOLDER_CASES))
def test_hostile_folders(tmp_path: Path, case: str) -> None:
    make, words = FOLDER_CASES[case]
    refused(lambda: read_tntp(make(tmp_path)), words)


FLOW_CASES = {
    "header only": ("From To Volume Cost\n", "no flow rows"),
    "negative volume": ("From To Volume Cost\n1 2 -5 3\n", "line 2, volume"),
    "NaN cost": ("From To Volume Cost\n1 2 5 nan\n", "line 2, cost"),
    "1e300 node": ("From To Volume Cost\n1e300 2 5 3\n", "line 2, from"),
    "fractional node": ("From To Volume Cost\n1 2.5 5 3\n", "line 2, to"),
    "short row": ("From To Volume Cost\n1 2 5\n", ">= 4 values"),
}


@pytest.mark.parametrize("case", [*FLOW_CASES, *SPECIAL])
def test_hostile_flow_files(tmp_path: Path, case: str) -> None:
    path = tmp_path / "Tiny_flow.tntp"
    if case in SPECIAL:
        SPECIAL[case](path)
        refused(lambda: read_tntp_flows(path), "not a regular file")
        return
    text, words = FLOW_CASES[case]
    path.write_text(text)
    refused(lambda: read_tntp_flows(path), "Tiny_flow.tntp", words)


# --- TNTP mutation fuzz ------------------------------------------------------------------

HOSTILE_CHARS = st.sampled_from(
    [*list("0123456789.-+eE;:~<>\t\n ,_xni"), "nan", "inf", "-1", "0", "1e400", "9" * 25, "\x00"]
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few spans replaced by hostile pieces, or cut short."""
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        text = text[:start] + "".join(draw(st.lists(HOSTILE_CHARS, max_size=3))) + text[end:]
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


@FUZZ
@given(
    part=st.sampled_from(["net", "trips", "nodes"]),
    data=st.data(),
)
def test_mutated_tntp_files_give_an_error_or_a_city(
    tmp_path: Path, part: str, data: st.DataObject
) -> None:
    valid = {"net": net_text(), "trips": TRIPS, "nodes": NODES}[part]
    text = data.draw(mutated(valid))
    folder = tntp_folder(tmp_path / "fuzz", **{part: text})
    city = error_or_value(lambda: read_tntp(folder))
    if city is not None:
        valid_city(city)


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text_as_a_net_file(tmp_path: Path, text: str) -> None:
    folder = tntp_folder(tmp_path / "fuzz", net=text)
    city = error_or_value(lambda: read_tntp(folder))
    if city is not None:
        valid_city(city)


# --- GraphML -----------------------------------------------------------------------------


def osmnx_graphml(
    path: Path, *, edge: dict[str, str | None] | None = None, node: dict[str, str] | None = None
) -> Path:
    """Three nodes in a two-way triangle, as OSMnx saves them; ``edge`` changes 1->2 (None
    drops an attribute) and ``node`` node 1."""
    g = nx.MultiDiGraph(crs="epsg:4326")
    for k, (x, y) in {1: (-0.1276, 51.5072), 2: (-0.1250, 51.5080), 3: (-0.1230, 51.5060)}.items():
        g.add_node(k, x=str(x), y=str(y))
    g.nodes[1].update(node or {})
    for u, v in ((1, 2), (2, 3), (3, 1)):
        for a, b in ((u, v), (v, u)):
            g.add_edge(a, b, length="200.0", highway="residential", oneway="False")
    attrs = g.edges[1, 2, 0]
    for key, value in (edge or {}).items():
        if value is None:
            del attrs[key]
        else:
            attrs[key] = value
    nx.write_graphml(g, path)
    return path


def link(path: Path) -> dict:
    return read_graphml(path).edges["1", "2"]


def speed_of(attrs: dict) -> float:
    return 60.0 * attrs[LINK_LENGTH] / attrs[LINK_FREE_FLOW_TIME]


GRAPHML_ERRORS: dict[str, tuple[dict[str, str | None], str]] = {
    "negative length": ({"length": "-400"}, "edge.length"),
    "length with thousands comma": ({"length": "1,000"}, "edge.length"),
    "length in km": ({"length": "0.4 km"}, "edge.length"),
    "length NaN": ({"length": "nan"}, "edge.length"),
    "length inf": ({"length": "inf"}, "edge.length"),
    "length 1e400": ({"length": "1e400"}, "edge.length"),
    "length blank": ({"length": ""}, "edge.length"),
    "length a list": ({"length": "['100', '200']"}, "edge.length"),
    "length missing": ({"length": None}, "edge.length"),
    "length underscores": ({"length": "1_000"}, "edge.length"),
    "negative maxspeed": ({"maxspeed": "-50"}, "edge.maxspeed"),
    "zero maxspeed": ({"maxspeed": "0"}, "edge.maxspeed"),
    "maxspeed a word": ({"maxspeed": "fast"}, "edge.maxspeed"),
    "maxspeed in km": ({"maxspeed": "50 km"}, "edge.maxspeed"),
    "maxspeed past any road": ({"maxspeed": "1e3"}, "edge.maxspeed"),
    "maxspeed negative mph": ({"maxspeed": "-30 mph"}, "edge.maxspeed"),
    "maxspeed list of words": ({"maxspeed": "['fast', '50']"}, "edge.maxspeed"),
    "negative speed_kph": ({"speed_kph": "-20"}, "edge.speed_kph"),
    "zero speed_kph": ({"speed_kph": "0"}, "edge.speed_kph"),
    "NaN speed_kph": ({"speed_kph": "nan"}, "edge.speed_kph"),
    "speed_kph a list": ({"speed_kph": "[20, 30]"}, "edge.speed_kph"),
    "negative lanes": ({"lanes": "-1"}, "edge.lanes"),
    "zero lanes": ({"lanes": "0"}, "edge.lanes"),
    "lanes a word": ({"lanes": "two"}, "edge.lanes"),
    "lanes list of words": ({"lanes": "two;three"}, "edge.lanes"),
}


@pytest.mark.parametrize("case", list(GRAPHML_ERRORS))
def test_hostile_graphml_edge_values(tmp_path: Path, case: str) -> None:
    edge, field = GRAPHML_ERRORS[case]
    path = osmnx_graphml(tmp_path / "city.graphml", edge=edge)
    refused(lambda: read_graphml(path), "city.graphml", field, "edge '1'->'2'")


GRAPHML_VALUES: dict[str, tuple[dict[str, str | None], str, float]] = {
    "exponent length": ({"length": "5e3"}, LINK_LENGTH, 5.0),
    "plus-signed length": ({"length": "+400"}, LINK_LENGTH, 0.4),
    "mph": ({"maxspeed": "30 mph"}, "speed", 30 * MPH_KMH),
    "mph without space": ({"maxspeed": "30mph"}, "speed", 30 * MPH_KMH),
    "km/h unit": ({"maxspeed": "60 km/h"}, "speed", 60.0),
    "knots": ({"maxspeed": "10 knots"}, "speed", 18.52),
    "semicolon list": ({"maxspeed": "30;50"}, "speed", 30.0),
    "OSMnx list": ({"maxspeed": "['40', '50']"}, "speed", 40.0),
    "OSMnx list of mph": ({"maxspeed": "['20 mph', '30 mph']"}, "speed", 20 * MPH_KMH),
    "zone code": ({"maxspeed": "DE:zone30"}, "speed", 30.0),
    "no posted number": ({"maxspeed": "none"}, "speed", 30.0),
    "signals": ({"maxspeed": "signals"}, "speed", 30.0),
    "country code": ({"maxspeed": "RU:urban"}, "speed", 30.0),
    "speed_kph first": ({"speed_kph": "20.0", "maxspeed": "50"}, "speed", 20.0),
    "lanes list": ({"lanes": "['4', '2']"}, LINK_CAPACITY, 1800.0),
    "lanes semicolons": ({"lanes": "4;2"}, LINK_CAPACITY, 1800.0),
}


@pytest.mark.parametrize("case", list(GRAPHML_VALUES))
def test_osm_values_read_as_documented(tmp_path: Path, case: str) -> None:
    edge, key, expected = GRAPHML_VALUES[case]
    attrs = link(osmnx_graphml(tmp_path / "city.graphml", edge=edge))
    assert (speed_of(attrs) if key == "speed" else attrs[key]) == pytest.approx(expected)
    assert speed_of(attrs) <= MAX_SPEED_KMH


GRAPHML_NODE_ERRORS = {
    "x a word": ({"x": "east"}, "x/y"),
    "x 1e400": ({"x": "1e400"}, "x/y"),
    "x NaN": ({"x": "nan"}, "x/y"),
    "x with comma": ({"x": "-0,1276"}, "x/y"),
    "x out of range": ({"x": "200"}, "WGS84"),
    "y out of range": ({"y": "-91"}, "WGS84"),
}


@pytest.mark.parametrize("case", list(GRAPHML_NODE_ERRORS))
def test_hostile_graphml_nodes(tmp_path: Path, case: str) -> None:
    node, words = GRAPHML_NODE_ERRORS[case]
    path = osmnx_graphml(tmp_path / "city.graphml", node=node)
    refused(lambda: read_graphml(path), "city.graphml", words)


GRAPHML = '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">{}</graphml>'
KEYS = (
    '<key id="x" for="node" attr.name="x" attr.type="string"/>'
    '<key id="y" for="node" attr.name="y" attr.type="string"/>'
    '<key id="l" for="edge" attr.name="length" attr.type="string"/>'
)
NODE = '<node id="{0}"><data key="x">{1}</data><data key="y">51.5</data></node>'


def graph_doc(edges: str, *, default: str = "directed", keys: str = KEYS, n: int = 3) -> str:
    nodes = "".join(NODE.format(k, -0.1 + k / 1000) for k in range(1, n + 1))
    return GRAPHML.format(f'{keys}<graph edgedefault="{default}">{nodes}{edges}</graph>')


def edge_xml(u: int, v: int, length: str = "200") -> str:
    return f'<edge source="{u}" target="{v}"><data key="l">{length}</data></edge>'


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa">'
    + "".join(
        f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + ']><graphml xmlns="http://graphml.graphdrawing.org/xmlns">&i;</graphml>'
)
GRAPHML_FILE_ERRORS = {
    "not XML": ("<graphml><oops", "not readable GraphML"),
    "empty": ("", "not readable GraphML"),
    "plain text": ("hello", "not readable GraphML"),
    "billion laughs": (LAUGHS, "not readable GraphML"),
    "external entity": (
        '<?xml version="1.0"?><!DOCTYPE g [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">&e;</graphml>',
        "not readable GraphML",
    ),
    "typed int with a word": (
        graph_doc(
            edge_xml(1, 2, "two hundred"),
            keys=KEYS.replace(
                'attr.name="length" attr.type="string"', 'attr.name="length" attr.type="int"'
            ),
        ),
        "not readable GraphML",
    ),
    "typed long past the float range": (
        graph_doc(
            edge_xml(1, 2, "9" * 400) + edge_xml(2, 1),
            keys=KEYS.replace(
                'attr.name="length" attr.type="string"', 'attr.name="length" attr.type="long"'
            ),
        ),
        "edge.length",
    ),
    "no edges": (graph_doc(""), "no usable edges"),
    "only self-loops": (graph_doc(edge_xml(1, 1) + edge_xml(2, 2)), "no usable edges"),
    "one-way chain": (graph_doc(edge_xml(1, 2) + edge_xml(2, 3)), "strongly connected"),
    "edge to a node without x/y": (graph_doc(edge_xml(1, 9) + edge_xml(9, 1)), "x/y"),
    "undirected with a bad length": (
        graph_doc(edge_xml(1, 2) + edge_xml(2, 3, "-5"), default="undirected"),
        "edge.length",
    ),
}


@pytest.mark.parametrize("case", list(GRAPHML_FILE_ERRORS))
def test_hostile_graphml_files(tmp_path: Path, case: str) -> None:
    text, words = GRAPHML_FILE_ERRORS[case]
    path = tmp_path / "city.graphml"
    path.write_text(text)
    refused(lambda: read_graphml(path), "city.graphml", words)


def test_undirected_graphml_roads_run_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "city.graphml"
    path.write_text(graph_doc(edge_xml(1, 2) + edge_xml(2, 3), default="undirected"))
    graph = read_graphml(path)
    assert set(graph.edges) == {("1", "2"), ("2", "1"), ("2", "3"), ("3", "2")}


@pytest.mark.parametrize("special", [*SPECIAL, "binary", "UTF-16 garbage"])
def test_special_graphml_files_end_at_once(tmp_path: Path, special: str) -> None:
    path = tmp_path / "city.graphml"
    if special in SPECIAL:
        SPECIAL[special](path)
        refused(lambda: read_graphml(path), "city.graphml", "not a regular file")
        return
    path.write_bytes(b"\x00\xff\x13" * 100 if special == "binary" else "\ufeffé".encode("utf-16"))
    refused(lambda: read_graphml(path), "city.graphml", "GraphML")


@FUZZ
@given(data=st.data())
def test_mutated_graphml_gives_an_error_or_a_graph(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "fuzz.graphml"
    valid = osmnx_graphml(path, edge={"maxspeed": "30 mph", "lanes": "2"}).read_text()
    text = data.draw(mutated(valid))
    path.write_text(text)
    graph = error_or_value(lambda: read_graphml(path))
    if graph is not None:
        for _, _, attrs in graph.edges(data=True):
            assert attrs[LINK_FREE_FLOW_TIME] > 0 and math.isfinite(attrs[LINK_FREE_FLOW_TIME])
            assert attrs[LINK_CAPACITY] > 0 and attrs[LINK_LENGTH] > 0


@FUZZ
@given(
    value=st.one_of(st.text(max_size=20), st.floats(), st.integers()),
    key=st.sampled_from(["length", "maxspeed", "speed_kph", "lanes"]),
)
def test_any_edge_value_gives_an_error_or_a_sound_link(
    tmp_path: Path, value: object, key: str
) -> None:
    text = str(value)
    if any(c in text for c in "<&\x00") or not text.isprintable():
        text = "x"
    attrs = error_or_value(lambda: link(osmnx_graphml(tmp_path / "fuzz.graphml", edge={key: text})))
    if attrs is not None:
        assert 0 < attrs[LINK_FREE_FLOW_TIME] < math.inf
        assert MIN_SPEED_KMH - 1e-9 <= speed_of(attrs) <= MAX_SPEED_KMH + 1e-9
        assert attrs[LINK_CAPACITY] > 0
