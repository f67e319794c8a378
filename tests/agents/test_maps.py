"""Maps of a run's day: the run folder's day log, node names, frames, the static map.

The HTML page in a browser: `test_map_page.py`.
"""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from types import ModuleType

import networkx as nx
import numpy as np
import pytest
from evil_town import run_evil_town, scenario_text
from typer.testing import CliRunner

from agents.cli.main import app
from agents.policies.baselines import make_baseline
from agents.training.evaluate import run_episode
from agents.viz import mapframes, maps
from agents.viz.mapframes import map_frames
from agents.viz.maps import fit_view, project
from agents.viz.static_map import static_map
from simcity.city.build import build_city
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.records.daylog import DayLog, DayRecorder, read_day_log

runner = CliRunner()
runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_evil_town(tmp_path_factory.mktemp("maps"))


@pytest.fixture(scope="module")
def day(run_dir: Path) -> DayLog:
    return read_day_log(run_dir)


# --- the run folder -------------------------------------------------------------------


def test_run_writes_the_day_of_the_last_episode(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "tiny", "--policy", "uniform", "--episodes", "2", "--seed", "4"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert {"city.json", "day.npz", "incidents.csv"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    day = read_day_log(out)
    episodes = json.loads((out / "episodes.json").read_text())
    assert day.seed == 5 and day.num_steps == 96 and day.num_nodes == 16
    # Uniform: every node gets budget / N each step.
    np.testing.assert_allclose(day.allocation, day.budget_units / 16, rtol=1e-6)
    assert len(day.incidents["kind"]) == episodes[-1]["incidents"]
    assert int(day.detected.sum()) == episodes[-1]["detected"]
    steps = np.genfromtxt(out / "steps.csv", delimiter=",", names=True)
    last = steps[steps["episode"] == 1]
    np.testing.assert_allclose(day.link_vc.max(axis=1), last["max_vc"], rtol=2e-3)
    np.testing.assert_allclose(day.time_min, last["time_min"])
    assert np.all(day.risk_per_h >= 0) and day.risk_per_h.max() > 0


def test_recording_leaves_the_episode_unchanged() -> None:
    env = CityEnv("tiny")
    plain = run_episode(env, make_baseline("risk", env, seed=0), 3)
    recorder = DayRecorder()
    watched = run_episode(
        env, make_baseline("risk", env, seed=0), 3, on_step=lambda _: recorder.record(env.world)
    )
    assert [i["reward"] for i in plain.infos] == [i["reward"] for i in watched.infos]
    assert plain.summary == watched.summary
    log = recorder.day_log(3)
    assert log.allocation.shape == (96, 16)
    np.testing.assert_allclose(
        log.allocation.sum(axis=1), [i["units_used"] for i in watched.infos], rtol=1e-5
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "day.npz").unlink(), "day.npz: missing file"),
        (lambda d: (d / "day.npz").write_bytes(b"not a zip"), "not a readable .npz"),
        (lambda d: (d / "city.json").write_text("{}"), "city.json: nodes: missing key"),
        (lambda d: (d / "incidents.csv").write_text("kind,node\n"), "incidents.csv: link"),
        (lambda d: (d / "summary.json").unlink(), "summary.json: missing file"),
    ],
)
def test_a_broken_run_folder_exits_2(run_dir: Path, tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in run_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    damage(broken)
    for command in ("map", "report"):
        result = runner.invoke(app, [command, str(broken)])
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()), result.output
        assert "Traceback" not in result.output


def test_a_missing_run_folder_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["map", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no such folder" in result.output


# --- node names from scenario files ----------------------------------------------------


def test_scenario_node_names_reach_the_city(tmp_path: Path) -> None:
    path = tmp_path / "named.toml"
    path.write_text(scenario_text({"0": "City Hall", "15": "Depot"}))
    city = build_city(load_scenario(path))
    names = [d["name"] for _, d in city.graph.nodes(data=True)]
    assert names[0] == "City Hall" and names[15] == "Depot" and names[1] == "r0c1"


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"0": ""}, "node_names"),
        ({"0": "two\nlines"}, "node_names"),
        ({"0": "x" * 201}, "node_names"),
        ({"99": "Nowhere"}, "node_names.99"),
    ],
)
def test_bad_node_names_are_errors(tmp_path: Path, table: dict[str, str], field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(scenario_text(table))
    with pytest.raises(SimcityError) as err:
        build_city(load_scenario(path), file=str(path))
    assert err.value.field == field and "bad.toml" in str(err.value)


def test_graphml_name_tags_are_kept(tmp_path: Path) -> None:
    graph = nx.MultiDiGraph()
    for node, (x, y) in {1: (-0.128, 51.507), 2: (-0.125, 51.508), 3: (-0.123, 51.506)}.items():
        graph.add_node(node, x=str(x), y=str(y), name=f"<b>junction {node}</b>")
    for u, v in ((1, 2), (2, 3), (3, 1)):
        graph.add_edge(u, v, length="200")
        graph.add_edge(v, u, length="200")
    nx.write_graphml(graph, tmp_path / "city.graphml")
    (tmp_path / "g.toml").write_text(
        'name = "g"\n[city]\nsource = "graphml"\npath = "city.graphml"\n'
        '[node_names]\n"3" = "Renamed"\n'
    )
    city = build_city(load_scenario(tmp_path / "g.toml"))
    names = {str(n): d["name"] for n, d in city.graph.nodes(data=True)}
    assert names == {"1": "<b>junction 1</b>", "2": "<b>junction 2</b>", "3": "Renamed"}


# --- frames and projection -----------------------------------------------------------


@pytest.mark.parametrize("module", [mapframes, maps])
def test_examples_in_the_docstrings(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_frames_have_known_means(day: DayLog) -> None:
    frames = map_frames(day)
    assert frames.label[0] == "whole day" and frames.label[1:4] == ["00:00", "01:00", "02:00"]
    assert frames.num_frames == 25
    np.testing.assert_allclose(frames.units[0], day.allocation.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(frames.units[9], day.allocation[32:36].mean(axis=0), rtol=1e-6)
    # A road's v/c is its busier direction's; the day shows each road's worst hour.
    a, b = frames.road_tail[0], frames.road_head[0]
    links = np.flatnonzero(
        ((day.link_tail == a) & (day.link_head == b))
        | ((day.link_tail == b) & (day.link_head == a))
    )
    hourly = day.link_vc[:, links].astype(float).reshape(24, 4, -1).mean(axis=1)
    np.testing.assert_allclose(frames.road_vc[1:, 0], hourly.max(axis=1), rtol=1e-6)
    assert frames.road_vc[0, 0] == pytest.approx(hourly.max())
    assert frames.frame_at(17.5) == 18 and frames.frame_at(0.0) == 1


def test_fit_view_frames_every_node_beside_the_panel(day: DayLog) -> None:
    view = fit_view(day.lon, day.lat, 1000, 700)
    x, y = project(day.lon, day.lat, view, 1000, 700)
    assert x.min() >= 290 + 30 - 0.5 and x.max() <= 1000 - 30 + 0.5
    assert y.min() >= 30 - 0.5 and y.max() <= 700 - 30 + 0.5
    assert max(x.min() - 320, 970 - x.max(), y.min() - 30, 670 - y.max()) > -0.5
    assert min(x.min() - 320 + (970 - x.max()), y.min() - 30 + (670 - y.max())) < 1.0


# --- the HTML map ----------------------------------------------------------------------


def test_static_map_draws_the_busiest_nodes(day: DayLog) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = static_map(day, title="$5 \\ title")  # text with mathtext specials draws as is
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    ax = fig.axes[0]
    frames = map_frames(day)
    height = image.shape[0]
    points = ax.transData.transform(np.column_stack([day.lon, day.lat]))
    for i in np.argsort(-frames.units[0])[:4]:
        px, py = points[i]
        pixel = image[round(height - py), round(px)]
        assert np.abs(pixel - 255).sum() > 100, (i, pixel)  # not the white background
    corner = image[5, 5]
    assert np.abs(corner - 255).max() <= 2
