"""The HTML map in headless Chromium: offline, escaped, drawn, and restyled by its time control.

The browser tests render the page in headless Chromium (Debian package ``chromium``,
installed by ``.ci/run``); they skip where there is none, except on CI.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from evil_town import run_evil_town
from page_checks import Tags, live_markup, need_chromium, network_references, page_requests
from PIL import Image
from typer.testing import CliRunner

from agents.cli.main import app
from agents.viz.mapframes import RISK_STOPS, color_lut, lut_colors, map_frames
from agents.viz.maps import BACKGROUND, fit_view, map_html, project
from agents.viz.screenshot import fixed_size, run_chromium
from simcity.records.daylog import DayLog, read_day_log

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_evil_town(tmp_path_factory.mktemp("maps"))


@pytest.fixture(scope="module")
def day(run_dir: Path) -> DayLog:
    return read_day_log(run_dir)


def rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])


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
