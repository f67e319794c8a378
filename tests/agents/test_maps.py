"""Maps of a run's day: the run folder's day log, frames, the HTML and static maps.

The browser tests render the page in headless Chromium (Debian package ``chromium``,
installed by ``.ci/run``); they skip where there is none, except on CI.
"""

from __future__ import annotations

import doctest
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import networkx as nx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from agents.cli.main import app
from agents.policies.baselines import make_baseline
from agents.training.evaluate import run_episode
from agents.viz import mapframes, maps
from agents.viz.mapframes import RISK_STOPS, color_lut, lut_colors, map_frames
from agents.viz.maps import BACKGROUND, fit_view, map_html, project
from agents.viz.screenshot import find_chromium, fixed_size, run_chromium
from agents.viz.static_map import static_map
from simcity.city.build import build_city
from simcity.config.scenario import bundled_scenarios, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.records.daylog import DayLog, DayRecorder, read_day_log

runner = CliRunner()
TINY = bundled_scenarios()["tiny"]
EVIL = {
    "0": "<script>document.title='pwned'</script>",
    "5": '"><img src=x onerror=alert(1)>',
    "6": "<img src=x onerror=\"document.title='pwned'\">",
    "9": "<script>",
    "15": "Main & 1st $5 \\ {tip}",
}


def scenario_text(names: dict[str, str], title: str = "Evil <script>alert(1)</script> town") -> str:
    """Tiny with named nodes and frequent incidents (so the map has some to show)."""
    lines = [f"base = {json.dumps(str(TINY))}", 'name = "evil"', f"title = {json.dumps(title)}"]
    lines += ["[incidents]", "accident_per_mveh_km = 300", "pollution_per_h = 0.3"]
    lines += ["[node_names]", *(f"{k} = {json.dumps(v)}" for k, v in names.items())]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("maps")
    (folder / "evil.toml").write_text(scenario_text(EVIL))
    out = folder / "run"
    args = ["run", str(folder / "evil.toml"), "--seed", "1", "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def day(run_dir: Path) -> DayLog:
    return read_day_log(run_dir)


def need_chromium() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Chromium: .ci/run installs the Debian package")
        pytest.skip("no Chromium on PATH")


class Tags(HTMLParser):
    """Start tags outside scripts and styles (the parser keeps their text raw)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def network_references(page: str) -> list[str]:
    """Every tag attribute or CSS rule of ``page`` (and its srcdoc frames) that fetches."""
    remote = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
    found = []
    tags = Tags(page).tags
    for tag, attrs in tags:
        for name in ("src", "href", "srcset", "poster", "action", "data", "background"):
            if remote.match(attrs.get(name, "")):
                found.append(f"<{tag} {name}={attrs[name]}>")
        if tag == "iframe" and "srcdoc" in attrs:
            found += network_references(attrs["srcdoc"])
    css = re.findall(r"<style[^>]*>(.*?)</style>", page, re.DOTALL | re.IGNORECASE)
    css += [attrs.get("style", "") for _, attrs in tags]
    found += [c[:80] for c in css if re.search(r"url\(\s*['\"]?(?:https?:)?//|@import", c)]
    return found


def page_requests(net_log: Path) -> list[str]:
    """URLs the page itself asked for (not the browser's own housekeeping), from a NetLog."""
    events = json.loads(net_log.read_text())["events"]
    urls = set()
    for event in events:
        params = event.get("params", {})
        url, key = params.get("url", ""), str(params.get("network_isolation_key", ""))
        if url and "file://" in key and not url.startswith(("file:", "data:")):
            urls.add(url)
    return sorted(urls)


def live_markup(page: str) -> list[str]:
    """Elements or handlers that the malicious names would have made live."""
    tags = Tags(page).tags
    bad = [f"<{t}>" for t, _ in tags if t in ("img", "svg", "object", "embed")]
    bad += [f"<{t} {k}>" for t, a in tags for k in a if k.startswith("on")]
    return bad


def rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])


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


def test_map_command_writes_html_and_png(run_dir: Path, tmp_path: Path) -> None:
    args = ["map", str(run_dir), "-o", str(tmp_path / "m.html"), "--png", str(tmp_path / "m.png")]
    result = runner.invoke(app, [*args, "--hour", "17"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "m.html").read_text()
    assert '<span id="simcity-frame-label">17:00</span>' in page
    with Image.open(tmp_path / "m.png") as png:
        assert png.size[0] > 800 and png.size[1] > 600
    assert runner.invoke(app, ["map", str(run_dir), "--basemap", "osm"]).exit_code == 2


def test_map_html_references_nothing_over_the_network(day: DayLog) -> None:
    page = map_html(day)
    assert network_references(page) == []
    assert "createDeck(" in page and len(page) < 6_000_000
    with_tiles = map_html(day, basemap="carto-light")
    assert network_references(with_tiles) and '"mapProvider":"carto"' in with_tiles


def test_names_are_escaped_in_the_map_file(day: DayLog) -> None:
    page = map_html(day, subtitle='policy "><img src=x onerror=alert(2)>')
    assert live_markup(page) == []
    scripts = [a for t, a in Tags(page).tags if t == "script"]
    # pydeck's bundle, its init, our JSON data and our page script: nothing else.
    assert len(scripts) == 4 and scripts[2] == {"type": "application/json", "id": "simcity-data"}
    assert "Evil &lt;script&gt;alert(1)&lt;/script&gt; town" in page
    assert "</script>document" not in page and "\\u003cscript\\u003edocument" in page


def test_map_renders_the_busiest_nodes(day: DayLog, tmp_path: Path) -> None:
    need_chromium()
    width, height = 1000, 700
    png, net_log = tmp_path / "map.png", tmp_path / "net.json"
    page = fixed_size(map_html(day), width, height)
    run_chromium(page, width=width, height=height, png=png, net_log=net_log)
    assert page_requests(net_log) == []
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert image.shape == (height, width, 3)
    background = rgb(BACKGROUND)
    assert np.abs(image[height - 3, width - 3] - background).max() <= 2  # an empty corner
    frames = map_frames(day)
    x, y = project(day.lon, day.lat, fit_view(day.lon, day.lat, width, height), width, height)
    fill = lut_colors(frames.risk_per_h[0], frames.risk_scale, color_lut(RISK_STOPS))
    for i in np.argsort(-frames.units[0])[:4]:
        pixel = image[round(y[i]), round(x[i])]
        assert np.abs(pixel - background).sum() > 100, (i, pixel)
        assert np.abs(pixel - fill[i]).max() <= 12, (i, pixel, fill[i])


def test_the_time_control_restyles_the_map(day: DayLog, tmp_path: Path) -> None:
    need_chromium()
    width, height = 1000, 700
    png = tmp_path / "hour.png"
    run_chromium(
        fixed_size(map_html(day), width, height),
        width=width,
        height=height,
        png=png,
        fragment="17:00",
    )
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    frames = map_frames(day)
    f = frames.frame_at(17.0)
    x, y = project(day.lon, day.lat, fit_view(day.lon, day.lat, width, height), width, height)
    lut = color_lut(RISK_STOPS)
    hour, whole = (lut_colors(frames.risk_per_h[k], frames.risk_scale, lut) for k in (f, 0))
    busiest = np.argsort(-frames.units[f])[:5]
    changed = [i for i in busiest if np.abs(hour[i] - whole[i]).max() > 30]
    assert changed, "no busy node changes colour at 17:00: pick another hour"
    for i in busiest:
        assert np.abs(image[round(y[i]), round(x[i])] - hour[i]).max() <= 12, i


def test_names_are_never_live_in_the_rendered_map(day: DayLog) -> None:
    need_chromium()
    # Show every node's tooltip the way deck.gl's tooltip widget does (text -> innerText,
    # html -> innerHTML), as if each were hovered.
    probe = """<script>
    window.alert = () => { document.title = "pwned"; };  // a live handler must not block
    setTimeout(() => {
      const layer = deckInstance.props.layers.find((l) => l.id === "nodes");
      for (const object of layer.props.data) {
        const tip = deckInstance.props.getTooltip({object, layer, picked: true});
        const div = document.createElement("div");
        div.className = "probe";
        if (tip.text) div.innerText = tip.text;
        if (tip.html) div.innerHTML = tip.html;
        document.body.appendChild(div);
      }
    }, 0);
    </script></html>"""
    page = map_html(day).replace("</html>", probe)
    dom = run_chromium(
        fixed_size(page, 900, 600), width=900, height=600, dump_dom=True, timeout_s=120
    )
    assert 'data-rendered="1"' in dom
    assert dom.count('class="probe"') == day.num_nodes
    assert live_markup(dom) == []
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # shown as text


def test_the_network_check_catches_a_basemap(day: DayLog, tmp_path: Path) -> None:
    need_chromium()
    net_log = tmp_path / "net.json"
    page = map_html(day, basemap="carto-dark")
    run_chromium(page, width=600, height=400, net_log=net_log, dump_dom=True, budget_ms=3000)
    assert any("https://" in url for url in page_requests(net_log))


# --- the static map --------------------------------------------------------------------


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
