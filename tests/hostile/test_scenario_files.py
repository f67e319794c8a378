"""Hostile scenario files and base chains: every case ends quickly in one `SimcityError`
naming the file and the real dotted field, or in a valid scenario; nothing physically
meaningless is accepted, and no message quotes more than a short excerpt of an input."""

from __future__ import annotations

import os
import socket
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hostile_scenarios import (
    good,
    loads_or_refuses,
    refused,
    ring,
    to_toml,
    web,
    with_value,
    write,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simcity.config.reading import MAX_BASE_CHAIN, MAX_DEPTH
from simcity.config.scenario import Scenario, load_scenario
from simcity.errors import SimcityError

Base = Callable[[], dict[str, Any]]


def few_zones() -> dict[str, Any]:
    """`good` with one zone in a thousand nodes (big grids fit in memory)."""
    return with_value("city.zone_share", 0.001)


def few_zones_web() -> dict[str, Any]:
    """`web` with one zone in a hundred nodes."""
    return with_value("city.zone_share", 0.01, web())


# --- every numeric field: its range's edges pass, beyond them and bad types do not ----

# (dotted field, values that must load, values that must be refused, the base scenario)
RANGES: list[tuple[str, list[Any], list[Any], Base]] = [
    ("seed", [0, 2**63 - 1], [-1, 2**63, 2**70], good),
    ("time.dt_min", [0.1, 1440], [0.09, 0, 1e-300, 5e-324, 1441, 1e308], good),
    ("time.start_hour", [0, 23.99], [24, -0.01], good),
    ("traffic.profile.night_level", [0, 10], [-1, 10.5, 1e308], good),
    ("traffic.profile.midday_level", [0, 10], [11], good),
    ("traffic.profile.am_level", [0, 10], [11], good),
    ("traffic.profile.pm_level", [0, 10], [11], good),
    ("traffic.profile.am_peak_h", [0, 23.5], [24, -1], good),
    ("traffic.profile.pm_peak_h", [0, 23.5], [24], good),
    ("traffic.profile.peak_width_h", [0.05, 24], [0, 0.01, 25], good),
    ("traffic.base_trips_veh_h", [0, 1e7], [-1, 1.1e7, 1e308], good),
    ("traffic.gravity_decay_per_min", [0, 10], [-0.1, 11], good),
    ("traffic.demand_scale", [0, 10], [11, 1e308], good),
    ("traffic.rel_gap", [1e-9, 0.5], [0, 5e-324, 1e-10, 1], good),
    ("traffic.max_iterations", [2, 100_000], [1, 100_001, 2**62], good),
    ("traffic.incident_rel_gap", [1e-9, 0.99], [0, 1], good),
    ("traffic.incident_max_iterations", [2, 100_000], [1, 2**62], good),
    ("traffic.solve_every_steps", [1, 100_000], [0, 100_001], good),
    ("traffic.path_workers", [1, 256], [0, 257], good),
    ("energy.kw_per_resident", [0, 100], [-0.1, 101], good),
    ("energy.kw_per_job", [0, 1000], [1001], good),
    ("energy.comfort_c", [-60, 60], [-61, 61], good),
    ("energy.cooling_per_deg_c", [0, 10], [11], good),
    ("energy.heating_per_deg_c", [0, 10], [11], good),
    ("energy.ev_share", [0, 1], [-0.01, 1.01], good),
    ("energy.charger_kw", [0, 1000], [1001], good),
    ("energy.charge_duration_h", [1 / 60, 48], [0, 49], good),
    ("weather.temp_mean_c", [-60, 60], [-61, 1e308], good),
    ("weather.temp_amplitude_c", [0, 40], [-1, 41], good),
    ("weather.temp_peak_hour", [0, 23.9], [24], good),
    ("carbon.intensity_g_per_kwh", [0, 2000], [-1, 2001, 1e308], good),
    ("datacentre_carbon.mean_g_per_kwh", [0, 2000], [2001, 1e308], good),
    ("datacentre_carbon.amplitude_g_per_kwh", [0, 2000], [2001], good),
    ("datacentre_carbon.min_hour", [0, 23], [24], good),
    ("events.0.attendees", [0, 10_000_000], [-1, 10**18, 10_000_001], good),
    ("events.0.car_share", [0, 1], [1.5], good),
    ("events.0.arrival_window_h", [1 / 60, 48], [0, 49], good),
    ("events.0.departure_window_h", [1 / 60, 48], [0, 1e308], good),
    ("events.0.load_kw", [0, 1e6], [-1, 1.1e6], good),
    ("events.0.lon", [-180, 180], [-181, 181], good),
    ("events.0.lat", [-90, 90], [-91, 91], good),
    ("city.rows", [1, 10_000], [0, 10_001, 2**62], few_zones),
    ("city.cols", [1, 10_000], [0, 2**62], few_zones),
    ("city.spacing_km", [0.01, 500], [0, 5e-324, 501], good),
    ("city.arterial_every", [1, 10_000], [0, 10_001], good),
    ("city.population", [0, 1e8], [-1, 1.1e8, 1e308], good),
    ("city.jobs", [0, 1e8], [1e308], good),
    ("city.cbd_km", [0.01, 500], [0, 5e-324, 501], good),
    ("city.zone_share", [1e-6, 1], [0, 1e-7, 1.01], good),
    ("city.origin_lon", [-179.99, 179.99], [-181, 181, 180], good),
    ("city.origin_lat", [-84.9, 84.9], [-91, 91, 90, 86], good),
    ("city.roads.speed_kmh", [1, 300], [0, 0.5, 301], good),
    ("city.roads.lanes", [1, 16], [0, 17], good),
    ("city.roads.arterial_speed_kmh", [1, 300], [301], good),
    ("city.roads.arterial_lanes", [1, 16], [0, 17], good),
    ("city.roads.lane_capacity_veh_h", [1, 5000], [0, 0.5, 5001], good),
    ("city.roads.bpr_b", [0, 10], [-1, 11], good),
    ("city.roads.bpr_power", [1, 10], [0.5, 11, 1e308], good),
    ("city.num_rings", [1, 100], [0, 10_001, 2**62], ring),
    ("city.num_spokes", [3, 100], [2, 10_001], ring),
    ("city.ring_spacing_km", [0.01, 10], [0, 501], ring),
    ("city.num_nodes", [2, 2000], [0, 1, 1_000_001, 2**62], few_zones_web),
    ("city.radius_km", [0.01, 500], [0, 501], web),
    ("city.link_km", [0.01, 500], [0, 501], web),
    ("sensors.traffic_counters_per_node", [0, 100], [-1, 101], good),
    ("sensors.air_quality_share", [0, 1], [1.1], good),
    ("sensors.energy_meters_per_node", [0, 100], [101], good),
    ("sensors.mtbf_h", [0.01, 1e6], [0, 1e7], good),
    ("sensors.mttr_h", [0.01, 1e5], [0, 1e6], good),
    ("incidents.accident_per_mveh_km", [0, 10_000], [-1, 10_001], good),
    ("incidents.congestion_gain", [0, 100], [101], good),
    ("incidents.pollution_per_h", [0, 10], [11], good),
    ("incidents.emissions_g_per_veh_km", [0, 10_000], [10_001], good),
    ("incidents.reference_emissions_g_h", [1, 1e12], [0, 0.5, 1e13], good),
    ("incidents.overload_per_mw_h", [0, 10], [11], good),
    ("incidents.overload_gain", [0, 20], [21, 1000], good),
    ("incidents.feeder_margin", [0.01, 100], [0, 101], good),
    ("incidents.hotspot_sigma", [0, 5], [6], good),
    ("incidents.history_per_node", [0, 1e6], [1e7], good),
    ("incidents.severity_sigma", [0, 5], [-1, 6], good),
    ("incidents.response_damage_factor", [0, 1], [1.1], good),
    ("incidents.response_duration_factor", [0, 1], [-0.1], good),
    ("incidents.accident_capacity_factor", [0, 1], [2], good),
    ("incidents.mean_duration_min", [[0.1, 43_200, 60]], [[0, 1, 1], [1e308, 1, 1], [1, 1]], good),
    ("incidents.damage_per_min", [[0, 1e7, 5]], [[1e308, 1, 1], [-1, 1, 1], [1, 1, 1, 1]], good),
    ("incidents.scheduled.0.duration_min", [0.1, 43_200], [0, 43_201], good),
    ("incidents.scheduled.0.severity", [0, 100], [101], good),
    ("incidents.scheduled.0.damage_per_min", [0, 1e7], [1e308, -1], good),
    ("incidents.scheduled.0.lat", [-90, 90], [91], good),
    ("monitoring.budget_units", [0, 1e6], [-1, 1.1e6, 1e308], good),
    ("monitoring.report_per_min", [0, 100], [101], good),
    ("monitoring.sensor_per_min", [0, 100], [101], good),
    ("monitoring.unit_per_min", [0, 100], [101], good),
    ("monitoring.spill", [0, 1], [1.1], good),
    ("monitoring.noise_sd", [0, 100], [101], good),
    ("monitoring.units_halving_noise", [1e-3, 1e6], [0, 5e-324, 1e7], good),
    ("monitoring.alarm_snr", [0, 1000], [1001], good),
    ("compute.analytics_flop_per_unit_min", [0, 1e21], [-1, 1e22, 1e308], good),
    ("compute.tiers.0.flop_per_unit_min", [1, 1e21], [0, 1e22], good),
    ("compute.tiers.0.hazard_gain", [0, 1000], [1001], good),
    ("compute.tiers.0.noise_gain", [0, 1000], [1001], good),
    ("compute.min_gpus", [0, 1_000_000], [-1, 1_000_001], good),
    ("compute.pue", [1, 5], [0.9, 5.1], good),
    ("compute.price_per_kwh", [0, 100], [101], good),
    ("compute.carbon_price_per_t", [0, 1e5], [1e6], good),
    ("compute.carbon_budget_kg_per_day", [0, 1e9], [-1, 2e9], good),
    ("compute.energy_budget_kwh_per_day", [0, 1e10], [2e10], good),
    ("reward.carbon_weight", [0, 1e6], [-1, 1.1e6], good),
    ("reward.estimation_cost", [0, 1e7], [1e8], good),
    ("reward.scale", [1e-12, 1e3], [0, 1e4], good),
]
WHOLE = {"seed", "attendees", "rows", "cols", "arterial_every", "lanes", "arterial_lanes"}
WHOLE |= {"num_rings", "num_spokes", "num_nodes", "min_gpus", "path_workers"}
WHOLE |= {"max_iterations", "incident_max_iterations", "solve_every_steps"}
WHOLE |= {"traffic_counters_per_node", "energy_meters_per_node"}


def _bad_types(field: str, ok: Any) -> list[Any]:
    """Values of the wrong type for every numeric field: text, booleans, NaN and infinities
    for reals, fractions for whole numbers."""
    if isinstance(ok, list):
        return ["1", [True, 1, 1], [float("nan"), 1, 1], [float("inf"), 1, 1]]
    bad: list[Any] = [str(ok), True, False, [ok], {"value": ok}]
    if field.rpartition(".")[2] in WHOLE:
        return [*bad, float(ok) + 0.5, float(ok)]
    return [*bad, float("nan"), float("inf"), float("-inf")]


ACCEPTED = [
    pytest.param(field, value, base, id=f"{field}={value!r}")
    for field, oks, _, base in RANGES
    for value in oks
]
REFUSED = [
    pytest.param(field, value, base, id=f"{field}={value!r}")
    for field, oks, bads, base in RANGES
    for value in [*bads, *_bad_types(field, oks[0])]
]


@pytest.mark.parametrize(("field", "value", "base"), ACCEPTED)
def test_a_range_edge_loads(tmp_path: Path, field: str, value: Any, base: Base) -> None:
    raw = with_value(field, value, base())
    if field == "time.num_steps":
        raw = with_value("time.dt_min", 1.0, raw)
    scenario = load_scenario(write(tmp_path, raw))
    got: Any = scenario
    for part in field.split("."):
        got = got[int(part)] if part.isdigit() else getattr(got, part)
    assert list(got) == value if isinstance(value, list) else got == value


@pytest.mark.parametrize(("field", "value", "base"), REFUSED)
def test_out_of_range_or_mistyped_is_refused_naming_the_field(
    tmp_path: Path, field: str, value: Any, base: Base
) -> None:
    path = write(tmp_path, with_value(field, value, base()))
    err = refused(path)
    assert err.file == str(path.resolve())
    # The field named is the one set, or (for a cross-field limit) the section it is in.
    assert err.field is not None
    assert field.startswith(err.field) or err.field.startswith(field), str(err)


def test_num_steps_range_and_a_day_of_at_most_a_year(tmp_path: Path) -> None:
    ok = with_value("time.dt_min", 0.1, with_value("time.num_steps", 100_000))
    assert load_scenario(write(tmp_path, ok)).time.num_steps == 100_000
    for steps in (0, 100_001, 2**62, "96", 96.0):
        refused(write(tmp_path, with_value("time.num_steps", steps)), "time.num_steps")
    year = with_value("time.num_steps", 100_000)  # 100,000 steps of 15 min: 2.9 years
    refused(write(tmp_path, year), "time.num_steps", "more than a year")


# --- sizes are checked before anything is built -----------------------------------


@pytest.mark.parametrize(
    ("city", "words"),
    [
        ({"rows": 10_000, "cols": 10_000}, "more than 1,000,000"),
        ({"rows": 1, "cols": 1}, "at least 2"),
        ({"rows": 3000, "cols": 300, "zone_share": 1.0}, "GiB"),
        ({"rows": 3, "cols": 3, "spacing_km": 500, "origin_lat": 82.0}, "latitude"),
        ({"rows": 3, "cols": 3, "spacing_km": 500, "origin_lon": 179.0}, "longitude"),
    ],
)
def test_a_city_too_big_or_off_the_globe_is_refused_before_building(
    tmp_path: Path, city: dict[str, Any], words: str
) -> None:
    raw = good()
    raw["city"].update(city)
    refused(write(tmp_path, raw), "city", words)


def test_a_dense_random_web_is_refused_by_its_expected_links(tmp_path: Path) -> None:
    raw = web()
    raw["city"].update(num_nodes=1_000_000, link_km=3.0, radius_km=3.0, zone_share=1e-6)
    refused(write(tmp_path, raw), "city", "GiB")


def test_steps_times_nodes_is_checked_against_memory(tmp_path: Path) -> None:
    raw = with_value("time.dt_min", 1.0, with_value("time.num_steps", 100_000))
    raw["city"].update(rows=1000, cols=1000, zone_share=0.0001)
    refused(write(tmp_path, raw), "city", "GiB")


# --- strings, dates, clocks, names -------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time.timezone", "America"),  # a folder of the zone database
        ("time.timezone", "/etc/passwd"),
        ("time.timezone", "../../etc/passwd"),
        ("time.timezone", "a" * 5000),
        ("time.timezone", "UTC\x00"),
        ("time.timezone", ""),
        ("time.timezone", "Mars/Olympus"),
        ("time.timezone", 3),
        ("time.date", "2022-13-01"),
        ("time.date", "1800-01-01"),
        ("time.date", "2300-01-01"),
        ("time.date", 1657584000),
        ("time.date", "yesterday"),
        ("time.date", True),
        ("events.0.start", "24:00"),
        ("events.0.start", "9:00"),
        ("events.0.end", "17:00"),  # before its 18:00 start
        ("events.0.name", ""),
        ("events.0.name", "x" * 201),
        ("incidents.scheduled.0.at", "10:60"),
        ("incidents.scheduled.0.kind", "meteor"),
        ("incidents.scheduled.0.name", 7),
        ("compute.tiers.0.name", ""),
        ("name", ""),
        ("name", "n" * 81),
        ("name", 5),
        ("name", "two\nlines"),
        ("events.0.name", "\x1b[2Jclear"),
        ("incidents.scheduled.0.name", "tab\there"),
        ("title", "t" * 10_001),
        ("description", ["a list"]),
        ("traffic.demand", "tntp"),  # needs a TNTP city
        ("traffic.method", "magic"),
        ("carbon.source", "sun"),
        ("carbon.source", "[bold]x" * 50),
        ("city.source", "tntpx"),
        ("compute.device", "no_such_gpu"),
        ("compute.device", ""),
        ("compute.policy_device", "nope"),
        ("compute.tiers", [{"name": f"t{i}", "flop_per_unit_min": 1e15} for i in range(17)]),
        ("events", [{"name": "e"}] * 2),
    ],
)
def test_a_bad_string_or_choice_is_refused(tmp_path: Path, field: str, value: Any) -> None:
    err = refused(write(tmp_path, with_value(field, value)))
    assert err.field is not None
    assert field.startswith(err.field) or err.field.startswith(field), str(err)


def test_date_may_be_a_toml_date_or_its_text(tmp_path: Path) -> None:
    text = to_toml(good()) + "[time]\ndate = 2022-09-06\n"
    assert load_scenario(write(tmp_path, text)).time.date.month == 9
    refused(write(tmp_path, to_toml(good()) + "[time]\ndate = 2022-09-06T10:00:00\n"), "time.date")


@pytest.mark.parametrize(
    "names",
    [
        {"0": "a\nb"},
        {"0": ""},
        {"0": "x" * 201},
        {"0": 3},
        {"0": "\x1b[31mred"},
        {"99": "nowhere"},  # no such node: found when the city is built (validate)
    ],
)
def test_node_names_are_one_short_line(tmp_path: Path, names: dict[str, Any]) -> None:
    path = write(tmp_path, {**good(), "node_names": names})
    if "99" in names:
        assert isinstance(load_scenario(path), Scenario)
        return
    refused(path, "node_names")


def test_too_many_node_names_are_refused(tmp_path: Path) -> None:
    names = {str(i): f"n{i}" for i in range(10_001)}
    refused(write(tmp_path, {**good(), "node_names": names}), "node_names", "10,000")


# --- encodings and bytes -------------------------------------------------------------

GOOD_TEXT = to_toml(good())
ENCODINGS = {
    "latin-1": GOOD_TEXT.replace("hostile", "hôstile").encode("latin-1"),
    "utf-16": GOOD_TEXT.encode("utf-16"),
    "utf-16-be-bom": b"\xfe\xff" + GOOD_TEXT.encode("utf-16-be"),
    "utf-32": GOOD_TEXT.encode("utf-32"),
    "nul": GOOD_TEXT.encode() + b"\x00",
    "binary": bytes(range(256)) * 8,
    "overlong": b'name = "\xc0\xaf"\n',
    "surrogate": b'name = "\xed\xa0\x80"\n',
    "truncated": GOOD_TEXT.replace("hostile", "hôstile").encode()[:-3] + b"\xc3",
    "elf": b"\x7fELF\x02\x01\x01" + b"\x00" * 64,
    "gzip": b"\x1f\x8b\x08\x00" + b"\x00" * 32,
    "empty": b"",
    "bom-only": b"\xef\xbb\xbf",
    "big": b"# " + b"x" * (1024 * 1024) + b"\n" + GOOD_TEXT.encode(),
    "control": b'name = "a\x01b"\n',
    "bad-toml": b"name = \n[city\n",
    "dup-key": b'name = "a"\nname = "b"\n',
    "huge-int": b"seed = " + b"9" * 5000 + b"\n",
    "huge-hex": b"seed = 0x" + b"f" * 5000 + b"\n",
    "array-top": b"[[city]]\nsource = 1\n",
}


@pytest.mark.parametrize("kind", sorted(ENCODINGS))
def test_bytes_that_are_not_a_scenario_are_refused(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path, ENCODINGS[kind])
    refused(path)


@pytest.mark.parametrize("kind", sorted(ENCODINGS))
def test_a_base_that_is_not_a_scenario_is_refused(tmp_path: Path, kind: str) -> None:
    write(tmp_path, ENCODINGS[kind], "parent.toml")
    child = write(tmp_path, 'base = "parent.toml"\nname = "child"\n')
    err = refused(child)
    if kind in ("empty", "bom-only"):  # an empty base adds nothing: the child lacks a city
        assert err.file == str(child.resolve()) and err.field == "city"
    else:  # what is wrong is in the base, and the message says so
        assert err.file == str((tmp_path / "parent.toml").resolve()) or "parent.toml" in str(err)


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + GOOD_TEXT.encode())
    assert load_scenario(path).name == "hostile"


# --- special files, as the scenario and as its base ----------------------------------


def _special(tmp_path: Path, kind: str) -> str:
    """A path (text, relative to ``tmp_path`` or absolute) that is no scenario file."""
    if kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        return "fifo"
    if kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(tmp_path / "sock"))
        return "sock"
    if kind == "folder":
        (tmp_path / "folder.toml").mkdir()
        return "folder.toml"
    if kind == "link-to-zero":
        (tmp_path / "zero.toml").symlink_to("/dev/zero")
        return "zero.toml"
    if kind == "link-loop":
        (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
        (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
        return "loop1"
    if kind == "broken-link":
        (tmp_path / "broken.toml").symlink_to(tmp_path / "gone.toml")
        return "broken.toml"
    if kind == "unreadable":
        path = write(tmp_path, GOOD_TEXT, "secret.toml")
        path.chmod(0)
        return "secret.toml"
    if kind == "missing":
        return "missing.toml"
    if kind == "long-name":
        return "x" * 300 + ".toml"
    if kind == "deep-path":
        return "/".join(["d"] * 3000)
    return kind  # an absolute special path


SPECIALS = [
    "fifo",
    "socket",
    "folder",
    "link-to-zero",
    "link-loop",
    "broken-link",
    "unreadable",
    "missing",
    "long-name",
    "deep-path",
    "/dev/zero",
    "/dev/null",
    "/dev/urandom",
    "/dev/stdin",
    "/proc/self/environ",
    "/proc/self/status",
    "/proc/self/mem",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/",
    "/etc",
]


@pytest.mark.parametrize("kind", SPECIALS)
def test_a_special_scenario_path_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    name = _special(tmp_path, kind)
    path = name if name.startswith("/") else str(tmp_path / name)
    os.environ["SIMCITY_CANARY"] = "canary-value-never-printed"
    err = refused(path)
    assert "canary-value" not in str(err)


@pytest.mark.parametrize("kind", SPECIALS)
def test_a_special_base_is_refused_at_once_naming_the_base_field(tmp_path: Path, kind: str) -> None:
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    name = _special(tmp_path, kind)
    child = write(tmp_path, f"base = {to_toml({'b': name}).split(' = ', 1)[1]}name = 'c'\n")
    os.environ["SIMCITY_CANARY"] = "canary-value-never-printed"
    err = refused(child)
    assert err.file == str(child.resolve())
    assert "canary-value" not in str(err)
    assert err.field in ("base", None) or "base" in str(err), str(err)


@pytest.mark.parametrize(
    "value",
    ['""', '"   "', "3", "true", "[1]", "{a = 1}", '"a\\u0000b"', '"' + "x" * 5000 + '"', "1e308"],
)
def test_a_base_that_is_no_file_name_is_refused(tmp_path: Path, value: str) -> None:
    child = write(tmp_path, f"base = {value}\nname = 'c'\n")
    refused(child, "base")


def test_base_chains_up_to_the_bound_load_and_longer_ones_do_not(tmp_path: Path) -> None:
    write(tmp_path, GOOD_TEXT, "s0.toml")
    for i in range(1, MAX_BASE_CHAIN + 1):
        write(tmp_path, f'base = "s{i - 1}.toml"\nseed = {i}\n', f"s{i}.toml")
    assert load_scenario(tmp_path / f"s{MAX_BASE_CHAIN - 1}.toml").seed == MAX_BASE_CHAIN - 1
    refused(tmp_path / f"s{MAX_BASE_CHAIN}.toml", "base", "too long")


def test_a_long_chain_of_bases_does_not_exhaust_recursion(tmp_path: Path) -> None:
    write(tmp_path, GOOD_TEXT, "s0.toml")
    for i in range(1, 2000):
        write(tmp_path, f'base = "s{i - 1}.toml"\n', f"s{i}.toml")
    refused(tmp_path / "s1999.toml", "base", "too long")


@pytest.mark.parametrize("length", [1, 2, 3, 15])
def test_a_cycle_of_bases_is_refused(tmp_path: Path, length: int) -> None:
    for i in range(length):
        write(tmp_path, f'base = "c{(i + 1) % length}.toml"\nname = "c"\n', f"c{i}.toml")
    refused(tmp_path / "c0.toml", "base", "cycle")


def test_a_cycle_through_a_link_or_another_spelling_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path, 'base = "sub/../b.toml"\n', "a.toml")
    write(tmp_path, 'base = "link.toml"\n', "b.toml")
    (tmp_path / "link.toml").symlink_to(tmp_path / "a.toml")
    refused(tmp_path / "a.toml", "base", "cycle")


def test_a_shared_base_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, GOOD_TEXT, "root.toml")
    write(tmp_path, 'base = "root.toml"\nseed = 2\n', "mid.toml")
    write(tmp_path, 'base = "mid.toml"\nseed = 3\n', "leaf.toml")
    assert load_scenario(tmp_path / "leaf.toml").seed == 3


# --- nesting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        "x = " + "[" * 1000 + "]" * 1000,
        "x = " + "[" * 100_000 + "]" * 100_000,
        "x = " + "{a = " * 1000 + "1" + "}" * 1000,
        ".".join(["a"] * (MAX_DEPTH + 1)) + " = 1",
        ".".join(["a"] * 5000) + " = 1",
        "[" + ".".join(["t"] * 5000) + "]",
        "[[" + ".".join(["t"] * 5000) + "]]",
        "[city]\n" + ".".join(["roads"] * 100) + " = 1",
    ],
    ids=[
        "array-33",
        "array-1e3",
        "array-1e5",
        "inline-1e3",
        "dotted-33",
        "dotted-5e3",
        "table-5e3",
        "array-table-5e3",
        "roads-100",
    ],
)
def test_nesting_deep_enough_to_exhaust_recursion_is_refused(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, 'name = "n"\n' + text + "\n")
    refused(path, words="deeply" if "roads-" not in text else "")


def test_nesting_in_a_base_is_refused_naming_the_base(tmp_path: Path) -> None:
    write(tmp_path, ".".join(["a"] * 5000) + " = 1\n", "deep.toml")
    err = refused(write(tmp_path, 'base = "deep.toml"\n'))
    assert err.file is not None and err.file.endswith("deep.toml")


# --- referenced files: carbon trace, devices, networks (checked when the scenario loads) --


@pytest.mark.parametrize(
    "kind", ["fifo", "folder", "link-to-zero", "missing", "/proc/self/environ"]
)
@pytest.mark.parametrize(
    "field", ["carbon.path", "datacentre_carbon.path", "compute.devices_file", "city.path"]
)
def test_a_named_data_file_that_is_special_is_refused_at_load(
    tmp_path: Path, kind: str, field: str
) -> None:
    name = _special(tmp_path, kind)
    raw = good()
    if field.endswith("carbon.path"):
        raw[field.split(".")[0]] = {"source": "trace", "path": name}
    elif field == "city.path":
        raw["city"] = {"source": "graphml", "path": name}
    else:
        raw["compute"]["devices_file"] = name
    os.environ["SIMCITY_CANARY"] = "canary-value-never-printed"
    err = refused(write(tmp_path, raw), field)
    assert "canary-value" not in str(err)


@pytest.mark.parametrize(
    ("devices", "words"),
    [
        (b"\xff\xfe" + "[g]\n".encode("utf-16-le"), "UTF-16"),
        ("[g]\nprecision = 'fp16'\n".encode("latin-1") + b"\xe9", "UTF-8"),
        (b"g = 3\n", "is not a table"),
        (b"[g]\nprecision = 'fp16'\npeak_flop_s = 'lots'\n", "g.peak_flop_s"),
        (b"x = " + b"[" * 5000 + b"]" * 5000, "TOML"),
        (b"", "no device profiles"),
    ],
)
def test_a_bad_devices_file_is_named_with_its_own_field(
    tmp_path: Path, devices: bytes, words: str
) -> None:
    write(tmp_path, devices, "devices.toml")
    raw = with_value("compute.devices_file", "devices.toml")
    raw["compute"]["device"] = "g"
    err = refused(write(tmp_path, raw), "compute.devices_file")
    assert "devices.toml" in err.message and words in err.message, str(err)


# --- messages quote at most a short excerpt of what the file holds -----------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "x" * 100_000),
        ("time.timezone", "Europe/" + "\x1b[2J" * 50),
        ("city.source", "a\nb\rc" * 100),
        ("carbon.path", "[bold]:x:" * 500),
        ("compute.device", "gpu\u202e" * 300),
        ("events.0.start", "9" * 10_000),
    ],
)
def test_messages_quote_a_short_printable_excerpt(tmp_path: Path, field: str, value: str) -> None:
    err = refused(write(tmp_path, with_value(field, value)))
    text = str(err)
    assert len(text) < 700, text
    assert all(c.isprintable() for c in text), text


def test_a_loaded_scenario_with_paths_round_trips_and_overrides(tmp_path: Path) -> None:
    from simcity.config.overrides import override_scenario

    write(
        tmp_path,
        "[g]\nprecision = 'fp16'\npeak_flop_s = 1e14\nutilisation = 0.5\n"
        "idle_power_w = 10\nmax_power_w = 60\n",
        "devices.toml",
    )
    write(tmp_path, "<graphml/>", "city.graphml")
    raw = with_value("compute.devices_file", "devices.toml")
    raw["compute"]["device"] = "g"
    raw["city"] = {"source": "graphml", "path": "city.graphml"}
    scenario = load_scenario(write(tmp_path, raw))
    again = Scenario.model_validate(scenario.model_dump())
    assert again == scenario
    changed = override_scenario(scenario, [("compute.pue", 1.5), ("city.population", 5.0)])
    assert changed.compute.devices_file == scenario.compute.devices_file
    with pytest.raises(SimcityError, match="regular file"):
        override_scenario(scenario, [("compute.devices_file", "/dev/zero")])


def test_an_overflowing_step_bill_names_a_real_field() -> None:
    from simcity.compute.bill import bill_step
    from simcity.config.devices import device_profile

    args = dict(device=device_profile("h100_sxm"), analytics_flop_per_unit_min=1e15, units=1.0)
    args |= dict(dt_min=15.0, pue=1.2, intensity_g_per_kwh=300.0, price_per_kwh=0.1)
    args |= dict(carbon_price_per_t=100.0, decisions=96)
    with pytest.raises(SimcityError) as info:
        bill_step(**args, policy_flop_per_decision=1e308)  # type: ignore[arg-type]
    assert info.value.field == "policy_flop_per_decision"
    args |= dict(analytics_flop_per_unit_min=1e308, units=1e6)
    with pytest.raises(SimcityError) as info:
        bill_step(**args, policy_flop_per_decision=0.0)  # type: ignore[arg-type]
    assert info.value.field == "compute.analytics_flop_per_unit_min"


def test_unknown_keys_are_named_printably(tmp_path: Path) -> None:
    raw = good()
    raw["city"]["bad\nkey" + "k" * 500] = 1
    err = refused(write(tmp_path, raw))
    assert err.field is not None and err.field.startswith("city.")
    assert all(c.isprintable() for c in str(err)) and len(str(err)) < 700


# --- properties: anything in gives a Scenario or a SimcityError ----------------------

SLOW = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SLOW
@given(data=st.binary(max_size=400))
def test_random_bytes_give_a_scenario_or_a_simcity_error(tmp_path: Path, data: bytes) -> None:
    loads_or_refuses(write(tmp_path, data))


@SLOW
@given(data=st.binary(max_size=200))
def test_random_bytes_after_a_good_file_give_a_scenario_or_a_simcity_error(
    tmp_path: Path, data: bytes
) -> None:
    loads_or_refuses(write(tmp_path, GOOD_TEXT.encode() + data))


FIELDS = [field for field, *_ in RANGES] + ["base", "name", "time.date", "time.timezone"]
FIELDS += ["city.source", "carbon.source", "carbon.path", "node_names", "events", "compute"]
SCALARS = (
    st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.text(alphabet=string.printable + "é\u202e\x00\x1b", max_size=30)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@SLOW
@given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), min_size=1, max_size=4))
def test_random_values_in_known_fields_give_a_scenario_or_a_simcity_error(
    tmp_path: Path, changes: list[tuple[str, Any]]
) -> None:
    raw = good()
    for field, value in changes:
        try:
            raw = with_value(field, value, raw)
        except (TypeError, IndexError, AttributeError, KeyError):
            continue  # a previous change made a section a scalar: nothing to set into
    result = loads_or_refuses(write(tmp_path, raw))
    if isinstance(result, Scenario):  # accepted: then every number in it is in range
        assert result.time.dt_min >= 0.1 and result.city.source
        assert 0 <= result.seed < 2**63


@SLOW
@given(doc=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5))
def test_random_documents_give_a_scenario_or_a_simcity_error(
    tmp_path: Path, doc: dict[str, Any]
) -> None:
    raw: dict[str, Any] = {}
    for field, value in doc.items():
        try:
            raw = with_value(field, value, raw)
        except (TypeError, IndexError, AttributeError, KeyError):
            continue
    loads_or_refuses(write(tmp_path, raw))


def test_the_loader_raises_nothing_but_simcity_error_for_a_missing_bundled_name() -> None:
    with pytest.raises(SimcityError, match="bundled"):
        load_scenario("no_such_bundled_scenario")
