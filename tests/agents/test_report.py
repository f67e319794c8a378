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

from agents.cli.main import app
from agents.viz.numbers import mean_ci_parts
from agents.viz.report import find_progress, read_progress
from agents.viz.report_figures import capacity_figure, heatmap_figure, training_figure
from agents.viz.report_sections import read_capacity
from agents.viz.screenshot import find_chromium, run_chromium
from simcity.config.scenario import bundled_scenarios
from simcity.records.daylog import read_day_log

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
    headings = ("Key figures", "Through the day", "Capacity by hour", "Where the monitoring went")
    for heading in (*headings, "Map"):
        assert f"<h2>{heading}</h2>" in page
    assert "<h2>Training</h2>" not in page and "<h2>Pareto front</h2>" not in page
    summary = json.loads((run_dir / "summary.json").read_text())
    damage = summary["kpis"]["damage"]
    mean, half = mean_ci_parts(damage["mean"], damage["ci95"])  # rounded to what they mean
    assert f"<td>damage $</td><td>{mean}</td><td>{half}</td>" in page
    figures = images(page)
    assert len(figures) == 4 and all(im.size[0] > 600 for im in figures)
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
    assert "<h2>Training</h2>" in page and len(images(page)) == 5
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
    assert len(re.findall(r"<img\b", dom)) == 4
    urls = set()
    for event in json.loads(net_log.read_text())["events"]:
        params = event.get("params", {})
        if "file://" in str(params.get("network_isolation_key", "")):
            urls.add(params.get("url", "file:"))
    assert [u for u in urls if not u.startswith(("file:", "data:", "about:"))] == []


DAILY_CARBON = 'source = "daily"\nmean_g_per_kwh = 300\namplitude_g_per_kwh = 200'


@pytest.fixture(scope="module")
def daily_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``random`` (2 days; it leaves part of the budget unused) and ``uniform`` (1 day)
    on `tiny` with a daily carbon cycle instead of its flat grid."""
    folder = tmp_path_factory.mktemp("daily")
    text = TINY.read_text()
    flat = 'source = "constant"\nintensity_g_per_kwh = 350'
    assert flat in text
    (folder / "day.toml").write_text(text.replace(flat, DAILY_CARBON))
    runs = []
    for policy, episodes in (("random", 2), ("uniform", 1)):
        out = folder / f"{policy}_run"
        args = ["run", str(folder / "day.toml"), "--policy", policy, "--out", str(out)]
        result = runner.invoke(app, [*args, "--episodes", str(episodes), "--quiet"])
        assert result.exit_code == 0, result.output
        runs.append(out)
    return runs[0], runs[1]


def test_capacity_by_hour_is_the_hourly_mean_of_steps(
    daily_runs: tuple[Path, Path], tmp_path: Path
) -> None:
    run = daily_runs[0]
    with (run / "steps.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["episode"] for row in rows} == {"0", "1"}
    units: dict[int, list[float]] = {}
    grams: dict[int, list[float]] = {}
    for row in rows:
        hour = int(float(row["hour_local"]))
        units.setdefault(hour, []).append(float(row["units_used"]))
        grams.setdefault(hour, []).append(float(row["datacentre_g_per_kwh"]))
    assert sorted(units) == list(range(24)) and all(len(v) == 8 for v in units.values())
    by_hand = np.array([np.mean(units[h]) for h in range(24)])
    intensity = np.array([np.mean(grams[h]) for h in range(24)])
    assert by_hand.min() < 20.0 - 0.1  # random leaves part of the budget unused
    capacity = read_capacity(run)
    np.testing.assert_allclose(capacity.units_used, by_hand, rtol=1e-12)
    np.testing.assert_allclose(capacity.intensity_g_per_kwh, intensity, rtol=1e-12)
    dirty = sorted(range(24), key=lambda h: -intensity[h])[:6]
    clean = sorted(range(24), key=lambda h: intensity[h])[:6]
    assert capacity.dirty_hours.tolist() == sorted(dirty) == [0, 1, 2, 3, 22, 23]
    assert capacity.clean_hours.tolist() == sorted(clean) == [10, 11, 12, 13, 14, 15]
    ratio = by_hand[dirty].mean() / by_hand[clean].mean()
    assert capacity.dirty_to_clean == pytest.approx(ratio, rel=1e-12)
    line = capacity_figure([capacity], 20.0).axes[0].get_lines()[0]
    np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float), by_hand)
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", str(run), "-o", str(out), "--no-map"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    cells = f"<tr><td>random (random_run)</td><td>{by_hand[dirty].mean():.4g}</td>"
    assert cells in page and f"<td>{ratio:.3f}</td>" in page
    assert "Flat carbon trace" not in page


def test_compare_adds_a_labelled_line(daily_runs: tuple[Path, Path], tmp_path: Path) -> None:
    run, other = daily_runs
    out = tmp_path / "report.html"
    args = ["report", str(run), "-o", str(out), "--no-map", "--compare", str(other)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<td>uniform (uniform_run)</td>" in page and "<td>1.000</td>" in page
    fig = capacity_figure([read_capacity(run), read_capacity(other)], 20.0)
    legend = fig.axes[0].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:2] == ["random (random_run)", "uniform (uniform_run)"]
    np.testing.assert_allclose(
        np.asarray(fig.axes[0].get_lines()[1].get_ydata(), dtype=float), 20.0
    )
    missing = runner.invoke(app, [*args, "--compare", str(tmp_path)])
    assert missing.exit_code == 2 and "summary.json" in missing.output


PARETO_HEADER = (
    "kind,policy,carbon_weight,budget_units,num_params,flop_per_decision,runs,runs_ok,"
    "service_cost,compute_kgco2,money,damage,estimation_cost,detection_rate,compute_kwh,"
    "compute_policy_kwh,pareto"
)


def write_points(folder: Path, rows: list[str]) -> Path:
    """A points.csv in the shape `simcity pareto --out` writes."""
    folder.mkdir(exist_ok=True)
    (folder / "points.csv").write_text("\n".join([PARETO_HEADER, *rows]) + "\n")
    return folder


def test_report_shows_the_pareto_front(run_dir: Path, tmp_path: Path) -> None:
    rows = []
    for policy, budget, cost, kg, front in (
        ("risk", 10, 100.0, 1.0, "true"),
        ("risk", 40, 25.0, 4.0, "true"),
        ("uniform", 10, 150.0, 1.0, "false"),
        ("uniform", 40, 75.0, 4.0, "false"),
        ("ppo-<b>", 20, 50.0, 2.0, "true"),
    ):
        kind = "policy" if policy.startswith("ppo") else "baseline"
        rows.append(f"{kind},{policy},1.0,{budget}.0,0,0.0,3,3,{cost},{kg},{cost + kg},{cost},")
        rows[-1] += f"0.0,0.9,1.0,0.0,{front}"
    rows.append("baseline,traffic,1.0,10.0,0,0.0,3,0,,,,,,,,,false")  # no run finished
    pareto = write_points(tmp_path / "pareto", rows)
    out = tmp_path / "report.html"
    args = ["report", str(run_dir), "-o", str(out), "--no-map", "--pareto", str(pareto)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "<h2>Pareto front</h2>" in page and len(images(page)) == 5
    table = page[page.index("<h2>Pareto front</h2>") :].split("</table>")[0]
    assert table.count("<tr>") == 1 + 3  # header and the three non-dominated points
    cells = re.findall(r"<tr><td>([^<]*)</td>", table)
    assert cells == ["risk", "ppo-&lt;b&gt;", "risk"]  # cheapest service first, escaped
    assert "6 points,\n3 non-dominated" in page


@pytest.mark.parametrize(
    ("row", "header", "field"),
    [
        ("baseline,risk,1.0,10.0,0,0.0,3,3,100,lots,101,100,0,0.9,1,0,true", None, "compute_kgco2"),
        ("baseline,risk,1.0,,0,0.0,3,3,100,1,101,100,0,0.9,1,0,true", None, "budget_units"),
        ("baseline,risk,1.0,10.0,0,0.0,3,3,100,1,101,100,0,0.9,1,0,maybe", None, "pareto"),
        ("baseline,risk,1.0,10.0,0,0.0,3,3,,,,,,,,,true", None, "service_cost"),
        ("risk,1.0,10.0,100,1,101", "policy,carbon_weight,budget_units,cost,kg,money", "kind"),
    ],
)
def test_bad_pareto_folder_is_a_user_error(
    run_dir: Path, tmp_path: Path, row: str, header: str | None, field: str
) -> None:
    pareto = write_points(tmp_path / "pareto", [row])
    if header is not None:
        (pareto / "points.csv").write_text(f"{header}\n{row}\n")
    result = runner.invoke(app, ["report", str(run_dir), "--no-map", "--pareto", str(pareto)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert str(pareto / "points.csv") in text and f"{field}:" in text
    assert "Traceback" not in result.output


def test_missing_pareto_folder_is_named(run_dir: Path, tmp_path: Path) -> None:
    for folder in (tmp_path / "nowhere", tmp_path):
        result = runner.invoke(app, ["report", str(run_dir), "--pareto", str(folder)])
        assert result.exit_code == 2 and str(folder) in " ".join(result.output.split())
    assert "points.csv: missing file" in " ".join(result.output.split())
