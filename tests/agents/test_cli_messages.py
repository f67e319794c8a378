"""The command line's smaller messages: help generated from the registries, flags shown as
flags, a missing --method, map --hour as HH:MM, the basemap's network warning, and the
map legend's incident counts following the slider."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from evil_town import run_evil_town
from page_checks import need_chromium
from typer.testing import CliRunner

from agents.cli.common import parse_hour
from agents.cli.main import app
from agents.policies.baselines import BASELINES
from agents.viz.map_page import incident_counts
from agents.viz.mapframes import map_frames
from agents.viz.maps import map_html
from agents.viz.screenshot import run_chromium
from simcity.errors import SimcityError
from simcity.records.daylog import DayLog, read_day_log

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_evil_town(tmp_path_factory.mktemp("messages"))


@pytest.fixture(scope="module")
def day(run_dir: Path) -> DayLog:
    return read_day_log(run_dir)


def _help(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_run_help_lists_every_baseline_of_the_registry() -> None:
    text = " ".join(_help("run").split())
    for name in BASELINES:
        assert re.search(rf"\b{name}\b", text), name


@pytest.mark.parametrize("command", ["run", "train", "finetune", "eval", "pareto"])
def test_quiet_is_shown_as_a_flag_without_a_value(command: str) -> None:
    line = next(line for line in _help(command).splitlines() if "--quiet" in line)
    assert "<bool>" not in line and "takes no value" in line


def test_compress_without_method_asks_for_one() -> None:
    result = runner.invoke(app, ["compress", "no/such.pt"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "--method: not given (expected one of int8 | prune | distill)" in text
    assert "unknown method" not in text


@pytest.mark.parametrize(
    ("text", "hour"), [("18", 18), ("18:00", 18), ("06:45", 6), ("0", 0), ("23:59", 23)]
)
def test_an_hour_is_taken_as_an_integer_or_hh_mm(text: str, hour: int) -> None:
    assert parse_hour(text, "--hour") == hour


@pytest.mark.parametrize("text", ["24", "-1", "18:60", "18:5", "noon", "", "18:00:00"])
def test_a_bad_hour_names_the_option(text: str) -> None:
    with pytest.raises(SimcityError) as err:
        parse_hour(text, "--hour")
    assert err.value.field == "--hour" and "HH:MM" in (err.value.expected or "")


def test_map_hour_hh_mm_opens_the_same_map_as_the_integer(run_dir: Path, tmp_path: Path) -> None:
    pages = []
    for k, hour in enumerate(("18", "18:00")):
        out = tmp_path / f"map{k}.html"
        result = runner.invoke(app, ["map", str(run_dir), "--hour", hour, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output
        pages.append(out.read_text())
    assert pages[0] == pages[1]
    result = runner.invoke(app, ["map", str(run_dir), "--hour", "25:00", "-o", str(out)])
    assert result.exit_code == 2 and "--hour" in result.output


def test_a_basemap_warns_that_tiles_need_the_network(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiles.html"
    args = ["map", str(run_dir), "--basemap", "carto-light", "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: --basemap carto-light" in text and "internet" in text


def test_the_legend_counts_the_incidents_of_the_frame(day: DayLog) -> None:
    frames = map_frames(day)
    whole = incident_counts(day, frames, 0)
    assert sum(whole) == len(day.detected) and whole[0] == int(day.detected.sum())
    f = frames.frame_at(18.0)
    at_six = incident_counts(day, frames, f)
    assert sum(at_six) == int(frames.active(f, day.incidents["start_min"]).sum())
    assert sum(at_six) < sum(whole)
    page = map_html(day, start_hour=18.0)
    assert f'<span id="simcity-detected">{at_six[0]}</span>' in page
    assert f'<span id="simcity-missed">{at_six[1]}</span>' in page
    assert "open at 18:00" in page


def test_the_legend_follows_the_slider_in_the_browser(day: DayLog) -> None:
    need_chromium()
    frames = map_frames(day)
    f = frames.frame_at(17.0)
    detected, missed = incident_counts(day, frames, f)
    dom = run_chromium(map_html(day), width=1000, height=700, dump_dom=True, fragment="17:00")
    assert f'<span id="simcity-detected">{detected}</span>' in dom
    assert f'<span id="simcity-missed">{missed}</span>' in dom
    assert '<span id="simcity-inc-when">open at 17:00</span>' in dom


def test_validate_shows_the_chain_of_bases(tmp_path: Path) -> None:
    """A user's variant of a bundled scenario validates from their folder and lists its base."""
    from simcity.config.scenario import bundled_scenarios

    mine = tmp_path / "mine.toml"
    mine.write_text('base = "downtown"\nseed = 5\n')
    result = runner.invoke(app, ["validate", str(mine)])
    assert result.exit_code == 0, result.output
    joined = result.output.replace("\n", "")  # a long path may wrap at the console's width
    assert f"base {bundled_scenarios()['downtown'].resolve()}" in joined
