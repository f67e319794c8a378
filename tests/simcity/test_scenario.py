"""Scenario files: bundled ones validate, malformed ones give one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from simcity.config.reading import base_chain
from simcity.config.scenario import Scenario, bundled_scenarios, load_scenario
from simcity.errors import SimcityError

BUNDLED = sorted(bundled_scenarios())


def test_bundle_has_the_promised_scenarios() -> None:
    for name in (
        "tiny",
        "downtown",
        "metro",
        "downtown_rush",
        "downtown_heatwave",
        "downtown_stadium",
    ):
        assert name in BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenario_loads_frozen(name: str) -> None:
    scenario = load_scenario(name)
    assert isinstance(scenario, Scenario)
    assert scenario.name == name
    with pytest.raises(Exception, match="frozen"):
        scenario.seed = 99  # type: ignore[misc]


def test_variant_inherits_and_overrides() -> None:
    base, rush = load_scenario("downtown"), load_scenario("downtown_rush")
    assert rush.city == base.city
    assert rush.traffic.profile.am_level > base.traffic.profile.am_level
    assert rush.traffic.profile.night_level == base.traffic.profile.night_level
    stadium = load_scenario("downtown_stadium")
    assert len(stadium.events) == 1 and stadium.events[0].start_h == pytest.approx(19 + 5 / 60)


def test_copy_with_changes_revalidates_nothing_but_stays_frozen() -> None:
    base = load_scenario("tiny")
    other = base.model_copy(update={"seed": 5})
    assert other.seed == 5 and base.seed == 1


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """
name = "t"
[city]
source = "grid"
rows = 3
cols = 3
origin_lon = 2.35
origin_lat = 48.85
"""


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (GOOD.replace("rows = 3", 'rows = "three"'), "city.rows", "integer"),
        (GOOD + "\ncolour = 3\n", "city.colour", "unknown key"),
        (GOOD.replace('name = "t"', 'name = "t"\nspeed = 3'), "speed", "unknown key"),
        (
            GOOD + "[city.roads]\nlane_capacity_veh_h = -5\n",
            "lane_capacity_veh_h",
            "greater than or equal to 1",
        ),
        (GOOD.replace("origin_lat = 48.85", "origin_lat = 148.85"), "origin_lat", "less than"),
        (GOOD + '[time]\ntimezone = "Mars/Olympus"\n', "time.timezone", "unknown IANA"),
        (GOOD + '[carbon]\nsource = "trace"\npath = "nope.csv"\n', "carbon.path", "no such file"),
        (
            GOOD.replace('source = "grid"', 'source = "tntp"\npath = "nowhere"'),
            "city.path",
            "no such folder",
        ),
        (GOOD.replace("rows = 3\n", ""), "city.rows", "missing"),
        (GOOD + '[traffic]\ndemand = "tntp"\n', "traffic.demand", "needs city.source"),
        ('name = "t"\n[city\n', None, "not valid TOML"),
    ],
)
def test_malformed_scenario_names_file_and_field(
    tmp_path: Path, text: str, field: str | None, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SimcityError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert words in message
    if field is not None:
        assert field in (info.value.field or "")


def test_good_minimal_scenario_loads(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, GOOD, "good.toml"))
    assert scenario.time.dt_min == 15 and scenario.time.num_steps == 96


def test_unknown_name_lists_bundled() -> None:
    with pytest.raises(SimcityError, match="downtown"):
        load_scenario("no_such_scenario")


def test_base_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, 'base = "b.toml"\n', "a.toml")
    write(tmp_path, 'base = "a.toml"\n', "b.toml")
    with pytest.raises(SimcityError, match="cycle"):
        load_scenario(tmp_path / "a.toml")


def test_relative_paths_resolve_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "trace.csv").write_text("timestamp,avg_CI\n")
    text = GOOD + '[carbon]\nsource = "trace"\npath = "trace.csv"\n'
    scenario = load_scenario(write(tmp_path, text, "s.toml"))
    assert scenario.carbon.source == "trace"
    assert Path(scenario.carbon.path) == tmp_path / "trace.csv"


@pytest.mark.parametrize("base", ["downtown", "downtown.toml"])
def test_a_users_variant_names_a_bundled_base(tmp_path: Path, base: str) -> None:
    """A user's file in their own folder inherits from a bundled scenario by name."""
    path = write(tmp_path, f'base = "{base}"\nseed = 99\n', "mine.toml")
    mine, bundled = load_scenario(path), load_scenario("downtown")
    assert mine.seed == 99 and mine.city == bundled.city
    assert base_chain(path) == [bundled_scenarios()["downtown"].resolve()]


def test_a_base_next_to_the_file_wins_over_a_bundled_name(tmp_path: Path) -> None:
    write(tmp_path, "seed = 7\n" + GOOD, "downtown.toml")  # shadows the bundled one
    path = write(tmp_path, 'base = "downtown.toml"\n', "mine.toml")
    assert load_scenario(path).seed == 7
    assert base_chain(path) == [(tmp_path / "downtown.toml").resolve()]


def test_a_missing_base_names_the_field_and_the_choices(tmp_path: Path) -> None:
    path = write(tmp_path, 'base = "downtwon"\n', "mine.toml")
    with pytest.raises(SimcityError, match="no bundled scenario") as info:
        load_scenario(path)
    assert info.value.field == "base" and "downtown" in (info.value.expected or "")


def test_a_typo_of_a_required_key_is_named_with_its_fix(tmp_path: Path) -> None:
    """`rowz` for `rows` makes `rows` missing too; the message names the typo first."""
    assert "rows = " in GOOD
    path = write(tmp_path, GOOD.replace("rows = ", "rowz = "), "typo.toml")
    with pytest.raises(SimcityError) as info:
        load_scenario(path)
    assert info.value.field == "city.rowz"
    assert str(info.value).endswith("city.rowz: unknown key (did you mean rows?) (+1 more)")


def test_an_unknown_key_far_from_any_name_gets_no_guess(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("rows = ", "banana = 1\nrows = "), "extra.toml")
    with pytest.raises(SimcityError, match=r"city\.banana: unknown key$"):
        load_scenario(path)
    path = write(tmp_path, GOOD.replace("rows = 3", "banana = 3"), "both.toml")
    with pytest.raises(SimcityError) as info:
        load_scenario(path)  # rows is missing, banana unknown: both are named
    assert str(info.value).endswith(
        "city.rows: missing required key; unknown key city.banana (+1 more)"
    )
