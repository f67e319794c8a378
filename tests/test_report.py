"""The HTML report of a run: sections, figures, training curves, escaping, offline."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from agents.cli import app
from agents.report import find_progress, read_progress
from agents.report_figures import heatmap_figure, training_figure
from agents.screenshot import find_chromium, run_chromium
from simcity.daylog import read_day_log
from simcity.scenario import bundled_scenarios

runner = CliRunner()
TINY = bundled_scenarios()["tiny"]
EVIL = ("<script>document.title='pwned'</script>", '"><img src=x onerror=alert(1)>')
NAMES = {str(i): f"{EVIL[i % 2]} {i}" for i in range(1, 16)} | {"0": "Hall"}


class Tags(HTMLParser):
    """Start tags outside scripts and styles, and the text of the document's title."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    lines = [f"base = {json.dumps(str(TINY))}", 'name = "named"', 'title = "A <b>bold</b> $town"']
    lines += ["[incidents]", "accident_per_mveh_km = 300"]
    lines += ["[node_names]", *(f"{k} = {json.dumps(v)}" for k, v in NAMES.items())]
    (folder / "named.toml").write_text("\n".join(lines) + "\n")
    out = folder / "run"
    args = ["run", str(folder / "named.toml"), "--episodes", "2", "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def images(page: str) -> list[Image.Image]:
    """The embedded PNG figures of a page."""
    found = []
    for tag, attrs in Tags(page).tags:
        if tag == "img":
            prefix = "data:image/png;base64,"
            assert attrs["src"].startswith(prefix), attrs["src"][:40]
            found.append(Image.open(io.BytesIO(base64.b64decode(attrs["src"][len(prefix) :]))))
    return found


def write_progress(folder: Path, rows: int = 12) -> None:
    """A progress.csv in the shape agents/train.py writes (rewards NaN early on)."""
    names = ["update", "num_updates", "step", "lr", "mean_episode_reward", "episodes"]
    names += ["policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "steps_per_s"]
    with (folder / "progress.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for k in range(1, rows + 1):
            reward = "nan" if k < 3 else str(-2.0 + 0.1 * k)
            writer.writerow([k, rows, 256 * k, 3e-4, reward, 2, 0.1, 1.0 / k, 5.0, 0.01, 0.1, 900])


def test_report_has_every_section(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    for heading in ("Key figures", "Through the day", "Where the monitoring went", "Map"):
        assert f"<h2>{heading}</h2>" in page
    assert "<h2>Training</h2>" not in page
    summary = json.loads((run_dir / "summary.json").read_text())
    damage = summary["kpis"]["damage"]["mean"]
    assert re.search(rf"<td>damage \$</td><td>{damage:,.0f}</td>", page)
    figures = images(page)
    assert len(figures) == 3 and all(im.size[0] > 600 for im in figures)
    frames = [a for t, a in Tags(page).tags if t == "iframe"]
    assert len(frames) == 1 and "createDeck(" in frames[0]["srcdoc"]
    small = tmp_path / "small.html"
    assert runner.invoke(app, ["report", str(run_dir), "-o", str(small), "--no-map"]).exit_code == 0
    assert "<iframe" not in small.read_text() and small.stat().st_size < out.stat().st_size / 3


def test_report_plots_training_curves(run_dir: Path, tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    write_progress(train)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(run_dir), "-o", str(out), "--train", str(train)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<h2>Training</h2>" in page and len(images(page)) == 4
    missing = runner.invoke(app, ["report", str(run_dir), "--train", str(tmp_path)])
    assert missing.exit_code == 2 and "progress.csv" in missing.output


def test_training_log_is_found_beside_the_run_or_its_checkpoint(tmp_path: Path) -> None:
    assert find_progress(tmp_path, {"policy": "risk"}, None) is None
    ckpt = tmp_path / "ppo"
    ckpt.mkdir()
    write_progress(ckpt)
    summary = {"policy": str(ckpt / "checkpoint.pt")}
    assert find_progress(tmp_path, summary, None) == ckpt / "progress.csv"
    write_progress(tmp_path)
    assert find_progress(tmp_path, summary, None) == tmp_path / "progress.csv"


def test_training_figure_reads_what_progress_has(tmp_path: Path) -> None:
    write_progress(tmp_path)
    progress = read_progress(tmp_path / "progress.csv")
    assert np.isnan(progress["mean_episode_reward"][:2]).all()
    fig = training_figure(progress)
    assert fig is not None
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_visible()]
    assert titles[:2] == ["mean episode reward", "policy loss"] and len(titles) == 6
    line = fig.axes[0].get_lines()[0]
    assert len(line.get_xdata()) == 10  # the two NaN rewards are left out
    assert training_figure({"update": np.arange(3.0)}) is None


def test_heatmap_rows_are_the_busiest_nodes(run_dir: Path) -> None:
    day = read_day_log(run_dir)
    fig = heatmap_figure(day, rows=5)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    busiest = np.argsort(-day.allocation.sum(axis=0), kind="stable")[:5]
    names = [day.node_name[i] for i in busiest]
    assert [n if len(n) <= 28 else n[:27] + "…" for n in names] == labels
    image = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(image, day.allocation[:, busiest].T)


def test_names_are_escaped_in_the_report(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert runner.invoke(app, ["report", str(run_dir), "-o", str(out)]).exit_code == 0
    page = out.read_text()
    tags = Tags(page).tags
    assert [t for t, _ in tags if t == "script"] == []
    assert all(attrs["src"].startswith("data:image/png") for t, attrs in tags if t == "img")
    assert not [k for _, attrs in tags for k in attrs if k.startswith("on")]
    assert "<title>A &lt;b&gt;bold&lt;/b&gt; $town: simcity report</title>" in page
    inner = Tags(next(a["srcdoc"] for t, a in tags if t == "iframe")).tags
    assert [t for t, _ in inner if t in ("img", "b")] == []
    assert len([t for t, _ in inner if t == "script"]) == 4
    # The costliest-incidents table names nodes (all but node 0 evil) as text.
    day = read_day_log(run_dir)
    top = np.argsort(-day.incidents["damage"], kind="stable")[:15]
    evil = int((day.incidents["node"][top] != 0).sum())
    table = page[page.index("<h2>Costliest incidents</h2>") :]
    shown = table.count("&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;")
    shown += table.count("&#34;&gt;&lt;img src=x onerror=alert(1)&gt;")
    assert shown == evil > 0


def test_report_renders_offline(run_dir: Path, tmp_path: Path) -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Chromium: .ci/run installs the Debian package")
        pytest.skip("no Chromium on PATH")
    out, net_log = tmp_path / "report.html", tmp_path / "net.json"
    assert runner.invoke(app, ["report", str(run_dir), "-o", str(out)]).exit_code == 0
    dom = run_chromium(
        out.read_text(), width=1100, height=2000, dump_dom=True, net_log=net_log, timeout_s=120
    )
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.DOTALL).group(1)  # type: ignore[union-attr]
    assert len(re.findall(r"<img\b", dom)) == 3
    urls = set()
    for event in json.loads(net_log.read_text())["events"]:
        params = event.get("params", {})
        if "file://" in str(params.get("network_isolation_key", "")):
            urls.add(params.get("url", "file:"))
    assert [u for u in urls if not u.startswith(("file:", "data:", "about:"))] == []
