"""The HTML report of a run: KPIs, figures, the costliest incidents, training, the map,
capacity by hour (beside other runs), and a Pareto front.

One self-contained file: figures are embedded PNGs (``data:`` URLs) and the interactive
map sits in an ``iframe`` whose ``srcdoc`` holds the whole map page. The template is
Jinja2 with autoescaping, so text from scenario files (titles, node names) is escaped.
"""

from __future__ import annotations

import base64
import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.viz.maps import map_html
from agents.viz.numbers import mean_ci_parts, number
from agents.viz.report_figures import (
    STEP_COLUMNS,
    capacity_figure,
    heatmap_figure,
    kpi_figure,
    pareto_figure,
    training_figure,
)
from agents.viz.report_sections import HourlyCapacity, ParetoPoints, read_capacity, read_pareto
from agents.viz.static_map import figure_png, static_map
from simcity.errors import SimcityError
from simcity.records.daylog import DayLog, read_day_log
from simcity.records.results import clock, read_steps, read_summary
from simcity.safe_io import read_text

PROGRESS_FILE = "progress.csv"
TOP_INCIDENTS = 15
KPI_ROWS = (
    ("damage", "damage $"),
    ("incidents", "incidents"),
    ("detected", "detected"),
    ("missed", "missed"),
    ("detection_rate", "detection rate"),
    ("mean_detection_delay_min", "detection delay, min"),
    ("estimation_error", "estimation error"),
    ("units_used_mean", "monitoring units used, mean"),
    ("compute_kwh", "compute kWh"),
    ("compute_kgco2", "compute kgCO2"),
    ("money", "total cost $"),
    ("reward", "reward"),
)

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}: simcity report</title>
<style>
body { font: 14px/1.5 system-ui, sans-serif; color: #111827; margin: 0 auto; max-width: 1080px;
  padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 0; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e5e7eb; }
.sub, .note { color: #4b5563; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #f3f4f6; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; display: block; }
iframe { width: 100%; height: 640px; border: 1px solid #d1d5db; border-radius: 4px; }
.missed { color: #b91c1c; } .detected { color: #15803d; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="sub">Scenario <b>{{ scenario }}</b>, policy <b>{{ policy }}</b>, {{ date }}
({{ timezone }}); {{ episodes }} day(s), seeds {{ seeds }}; {{ num_nodes }} nodes,
{{ num_links }} links. The map, heatmap and incidents show the last day (seed {{ seed }}).</p>
<h2>Key figures</h2>
<table>
<tr><th>KPI</th><th>mean</th><th>± 95%</th></tr>
{% for label, mean, ci in kpis %}<tr><td>{{ label }}</td><td>{{ mean }}</td><td>{{ ci }}</td></tr>
{% endfor %}</table>
<h2>Through the day</h2>
<img src="data:image/png;base64,{{ kpi_png }}"
 alt="Damage, incidents, compute energy and carbon, carbon intensity and capacity used by hour">
<h2>Capacity by hour</h2>
<img src="data:image/png;base64,{{ capacity_png }}"
 alt="Monitoring units used by local hour of day, with the grid carbon intensity">
<p class="note">Mean monitoring units used in each run's {{ num_extreme }} dirtiest and
{{ num_extreme }} cleanest local hours of its own data-centre carbon trace (hourly means
over its days); a ratio below 1 means the policy moves capacity to cleaner hours.</p>
<table>
<tr><th>run</th><th>units, dirtiest h</th><th>units, cleanest h</th><th>dirtiest / cleanest</th>
<th>gCO2/kWh, dirtiest h</th><th>gCO2/kWh, cleanest h</th></tr>
{% for row in capacity %}<tr><td>{{ row.label }}</td><td>{{ row.dirty }}</td>
<td>{{ row.clean }}</td><td>{{ row.ratio }}</td><td>{{ row.dirty_g }}</td>
<td>{{ row.clean_g }}</td></tr>
{% endfor %}</table>
{% if flat %}<p class="note">Flat carbon trace in {{ flat }}: the dirtiest and cleanest
hours are equally dirty there, so that split says nothing about carbon.</p>{% endif %}
<h2>Where the monitoring went</h2>
<img src="data:image/png;base64,{{ heatmap_png }}" alt="Monitoring units per node and step">
<h2>Map</h2>
<img src="data:image/png;base64,{{ map_png }}" alt="Static map of the day">
{% if map_page %}<p class="note">Interactive: drag the slider to step through the hours;
hover for each node's, road's and incident's figures.</p>
<iframe title="Interactive map" srcdoc="{{ map_page }}"></iframe>{% endif %}
<h2>Costliest incidents</h2>
{% if incidents %}<table>
<tr><th>where</th><th>kind</th><th>start</th><th>outcome</th><th>damage $</th></tr>
{% for row in incidents %}<tr><td>{{ row.where }}</td><td>{{ row.kind }}</td>
<td>{{ row.start }}</td><td class="{{ row.status }}">{{ row.outcome }}</td>
<td>{{ row.damage }}</td></tr>
{% endfor %}</table>{% else %}<p class="note">No incidents.</p>{% endif %}
{% if pareto %}<h2>Pareto front</h2>
<p class="note">From {{ pareto.path }}: {{ pareto.points | length }} points,
{{ pareto.front | length }} non-dominated in service cost, compute kgCO2 and money (the
dotted line joins them in this plane).</p>
<img src="data:image/png;base64,{{ pareto_png }}"
 alt="Pareto front: service cost against compute kgCO2">
<table>
<tr><th>policy</th><th>kind</th><th>carbon weight</th><th>budget, units</th>
<th>service cost $</th><th>compute kgCO2</th><th>total cost $</th></tr>
{% for row in pareto_rows %}<tr><td>{{ row.policy }}</td><td>{{ row.kind }}</td>
<td>{{ row.weight }}</td><td>{{ row.budget }}</td><td>{{ row.service }}</td>
<td>{{ row.kgco2 }}</td><td>{{ row.money }}</td></tr>
{% endfor %}</table>{% endif %}
{% if training_png %}<h2>Training</h2>
<p class="note">From {{ progress }}.</p>
<img src="data:image/png;base64,{{ training_png }}" alt="Training curves">{% endif %}
</body>
</html>
"""


def find_progress(run_dir: Path, summary: Mapping[str, Any], train_dir: Path | None) -> Path | None:
    """The training log for a run: TRAIN_DIR's, the run folder's, or its checkpoint's."""
    if train_dir is not None:
        path = train_dir / PROGRESS_FILE
        if not path.is_file():
            raise SimcityError(
                "no training log here",
                file=path,
                field="--train",
                expected="a folder written by `simcity train --out`",
            )
        return path
    policy = Path(str(summary.get("policy", "")))
    for folder in (run_dir, policy.parent if policy.suffix == ".pt" else None):
        if folder is not None and (folder / PROGRESS_FILE).is_file():
            return folder / PROGRESS_FILE
    return None


def read_progress(path: Path) -> dict[str, np.ndarray]:
    """The numeric columns of a ``progress.csv`` (columns that are not numbers are left out)."""
    expected = "a progress.csv written by `simcity train`"
    text = read_text(path, expected=expected)  # a regular file, bounded: never a FIFO
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        names = reader.fieldnames or []
    except csv.Error as err:
        raise SimcityError(f"is not valid CSV ({err})", file=path, expected=expected) from None
    table = {}
    for name in names:
        try:
            table[name] = np.array([float(row[name] or "nan") for row in rows])
        except (TypeError, ValueError):
            continue
    return table


def _png(fig: Any) -> str:
    return base64.b64encode(figure_png(fig)).decode("ascii")


def _number(value: float) -> str:
    return number(value)


def _mean_ci(mean: float, half: float, several: bool) -> tuple[str, str]:
    """A key figure and its interval rounded to what they mean; no interval for one day."""
    return mean_ci_parts(mean, half) if several else (number(mean), "–")


def _incident_rows(day: DayLog) -> list[dict[str, str]]:
    inc = day.incidents
    rows = []
    for k in np.argsort(-inc["damage"], kind="stable")[:TOP_INCIDENTS]:
        detected = inc["status"][k] == "detected"
        delay = inc["detected_min"][k] - inc["start_min"][k]
        rows.append(
            {
                "where": day.node_name[int(inc["node"][k])],
                "kind": str(inc["kind"][k]).replace("_", " "),
                "start": clock(float(day.hour_at(inc["start_min"][k]))),
                "status": str(inc["status"][k]),
                "outcome": f"detected after {delay:.0f} min" if detected else "missed",
                "damage": _number(float(inc["damage"][k])),
            }
        )
    return rows


def _capacity_rows(runs: Sequence[HourlyCapacity]) -> list[dict[str, str]]:
    return [
        {
            "label": run.label,
            "dirty": _number(run.dirty_units),
            "clean": _number(run.clean_units),
            "ratio": f"{run.dirty_to_clean:.3f}" if math.isfinite(run.dirty_to_clean) else "–",
            "dirty_g": _number(run.dirty_g_per_kwh),
            "clean_g": _number(run.clean_g_per_kwh),
        }
        for run in runs
    ]


def _pareto_rows(pareto: ParetoPoints) -> list[dict[str, str]]:
    return [
        {
            "policy": str(p["policy"]),
            "kind": str(p["kind"]),
            "weight": f"{p['carbon_weight']:g}",
            "budget": f"{p['budget_units']:g}",
            "service": _number(p["service_cost"]),
            "kgco2": _number(p["compute_kgco2"]),
            "money": _number(p["money"]),
        }
        for p in pareto.front
    ]


def report_html(
    run_dir: Path,
    *,
    train_dir: Path | None = None,
    interactive_map: bool = True,
    pareto_dir: Path | None = None,
    compare: Sequence[Path] = (),
) -> str:
    """The report page of a run folder written by ``simcity run --out``.

    ``compare``: other run folders whose units used by hour go beside this run's;
    ``pareto_dir``: a ``simcity pareto --out`` folder whose front to show.
    """
    import jinja2

    summary = read_summary(run_dir)
    capacity = [read_capacity(folder) for folder in (run_dir, *compare)]
    pareto = read_pareto(pareto_dir) if pareto_dir is not None else None
    day = read_day_log(run_dir)
    steps = read_steps(run_dir, STEP_COLUMNS)
    progress_path = find_progress(run_dir, summary, train_dir)
    kpis = summary.get("kpis", {})
    several = int(summary.get("episodes", 1)) > 1
    rows = [
        (label, *_mean_ci(kpis[key]["mean"], kpis[key]["ci95"], several))
        for key, label in KPI_ROWS
        if isinstance(kpis.get(key), dict) and {"mean", "ci95"} <= set(kpis[key])
    ]
    title = str(summary.get("title") or day.title or day.scenario)
    subtitle = f"{summary.get('policy', '?')} policy, {summary.get('date', '')}, seed {day.seed}"
    training = None
    if progress_path is not None:
        fig = training_figure(read_progress(progress_path))
        training = _png(fig) if fig is not None else None
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        title=title,
        scenario=summary.get("scenario", day.scenario),
        policy=summary.get("policy", "?"),
        date=summary.get("date", ""),
        timezone=summary.get("timezone", ""),
        episodes=summary.get("episodes", 1),
        seeds=", ".join(str(s) for s in summary.get("seeds", [day.seed])),
        seed=day.seed,
        num_nodes=day.num_nodes,
        num_links=len(day.link_tail),
        kpis=rows,
        kpi_png=_png(kpi_figure(steps, day.dt_min, day.budget_units)),
        heatmap_png=_png(heatmap_figure(day)),
        capacity_png=_png(capacity_figure(capacity, day.budget_units)),
        capacity=_capacity_rows(capacity),
        num_extreme=len(capacity[0].dirty_hours),
        flat=", ".join(run.label for run in capacity if run.flat_trace),
        pareto=pareto,
        pareto_png=_png(pareto_figure(pareto.points)) if pareto is not None else "",
        pareto_rows=_pareto_rows(pareto) if pareto is not None else [],
        map_png=_png(static_map(day, title=title)),
        map_page=map_html(day, subtitle=subtitle) if interactive_map else "",
        incidents=_incident_rows(day),
        training_png=training,
        progress=str(progress_path),
    )
