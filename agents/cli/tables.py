"""Tables the command line prints: hourly city KPIs, the day, monitoring KPIs, compute use,
the policies compared by `simcity eval` and `simcity finetune`.

No table cuts a number: every column folds rather than ending a cell in "…", and a table
with more columns than fit the console is printed as several tables with the row labels
repeated (`chunked`). Figures are rounded to what they mean (`agents.viz.numbers`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from agents.viz.numbers import format_mean_ci, mean_ci_parts, number

console = Console()
FIGURE = re.compile(r"^([-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?|±|–|)$")
"""A cell word that is a figure (``1,234.5``, ``-2e-05``, ``38%``), ``±`` or ``–``."""


def new_table(title: str, **kwargs: Any) -> Table:
    """A left-titled table whose columns (`add_column`) fold, never cut, a long cell."""
    return Table(title=title, title_justify="left", **kwargs)


def add_columns(table: Table, names: Sequence[str], *, first_left: bool = True) -> None:
    """Columns that wrap at spaces and fold a word too long for them, never ending in "…"."""
    for k, name in enumerate(names):
        left = first_left and k == 0
        table.add_column(name, justify="left" if left else "right", overflow="fold")


def keep_words(table: Table, width: int) -> Table:
    """``table`` with each column as wide as its longest word (cell or header), so that
    fitting ``width`` wraps headers at spaces rather than folding a number. Where that is
    too wide, the columns of figures keep the width of their longest figure (their headers
    fold) and the columns of text share what is left, folding their words."""
    words = [_narrowest([str(cell) for cell in column.cells]) for column in table.columns]
    headers = [_narrowest([str(column.header)]) for column in table.columns]
    whole = [max(pair) for pair in zip(words, headers, strict=True)]
    chosen = list(whole)
    if 1 + sum(w + 3 for w in whole) > width:
        figures = [_all_figures(column.cells) for column in table.columns]
        fixed = sum(w for w, figure in zip(words, figures, strict=True) if figure)
        texts = [w for w, figure in zip(whole, figures, strict=True) if not figure]
        left = width - 1 - 3 * len(whole) - fixed
        for k, figure in enumerate(figures):
            if figure:
                chosen[k] = words[k]
            else:
                share = left * whole[k] // max(sum(texts), 1)
                chosen[k] = max(4, min(whole[k], share))
    for column, chosen_width in zip(table.columns, chosen, strict=True):
        column.width = chosen_width
    return table


def _all_figures(cells: Any) -> bool:
    return all(FIGURE.match(word) for cell in cells for word in str(cell).split())


def _narrowest(texts: Sequence[str]) -> int:
    """The narrowest column that holds ``texts`` wrapped at spaces: their longest word."""
    return max((len(word) for text in texts for word in text.split()), default=1)


def chunked(
    title: str,
    label: str,
    rows: Sequence[tuple[str, Sequence[str]]],
    headers: Sequence[str],
    width: int,
) -> list[Table]:
    """``rows`` (label, cells) as tables of as many ``headers`` as fit ``width`` columns
    with no word folded, each table repeating the row labels; the title says which part
    each one is."""
    edge = 1 + 3 + _narrowest([label, *(name for name, _ in rows)])  # border, padding
    groups: list[list[int]] = [[]]
    used = edge
    for k, header in enumerate(headers):
        need = 3 + _narrowest([header, *(cells[k] for _, cells in rows)])
        if groups[-1] and used + need > width:
            groups.append([])
            used = edge
        groups[-1].append(k)
        used += need
    tables = []
    for part, group in enumerate(groups, 1):
        suffix = f" ({part}/{len(groups)})" if len(groups) > 1 else ""
        table = new_table(title + suffix)
        add_columns(table, [label, *(headers[k] for k in group)])
        for name, cells in rows:
            table.add_row(name, *(cells[k] for k in group))
        tables.append(table)
    return tables


def scenarios_table(rows: Sequence[tuple[str, str, str, str]]) -> Table:
    """The bundled scenarios: name, title, city source and steps."""
    table = Table(title="Bundled scenarios")
    for name in ("name", "title", "city", "steps"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def eval_tables(title: str, stats: Mapping[str, Mapping[str, Mapping[str, float]]]) -> list[Table]:
    """Each policy's KPIs (mean ± 95%), chunked to the console's width."""
    from agents.training.evaluate import KPIS

    rows = [
        (name, [format_mean_ci(kpis[k]["mean"], kpis[k]["ci95"]) for k, _ in KPIS])
        for name, kpis in stats.items()
    ]
    return chunked(title, "policy", rows, [label for _, label in KPIS], console.width)


def finetune_table(doc: Mapping[str, Any], episodes: int) -> Table:
    """`simcity finetune`'s comparison: total cost per day (mean ± 95%) and damage."""
    table = new_table(f"{doc['scenario']}: total cost per day, {episodes} held-out days")
    add_columns(table, ["policy", "cost $ (mean ± 95%)", "damage $"])
    for name, kpis in doc["kpis"].items():
        money, damage = kpis["money"], kpis["damage"]
        table.add_row(name, format_mean_ci(money["mean"], money["ci95"]), number(damage["mean"]))
    return table


def print_monitoring(policy: str, stats: dict[str, dict[str, float]], episodes: int) -> None:
    from agents.training.evaluate import KPIS

    table = new_table(f"{policy}: {episodes} episode(s), mean ± 95%")
    add_columns(table, ["kpi", "mean", "± 95%"])
    for key, label in KPIS:
        mean, half = mean_ci_parts(stats[key]["mean"], stats[key]["ci95"])
        if episodes == 1:
            mean, half = number(stats[key]["mean"]), "–"
        table.add_row(label, mean, half)
    console.print(table)


def print_kpis(title: str, hourly: list[dict[str, float]], summary: dict[str, Any]) -> None:
    table = new_table(title)
    columns = [
        ("hour", "{:02.0f}:00"),
        ("demand veh/h", "{:,.0f}"),
        ("travel time veh·h", "{:,.0f}"),
        ("time index", "{:.3f}"),
        ("mean v/c", "{:.3f}"),
        ("load MW", "{}"),
        ("peak MW", "{}"),
        ("gCO2/kWh", "{:.0f}"),
    ]
    keys = [
        "hour",
        "demand_veh_h",
        "travel_time_veh_h",
        "travel_time_index",
        "mean_vc",
        "load_mw",
        "peak_load_mw",
        "carbon_g_per_kwh",
    ]
    add_columns(table, [name for name, _ in columns], first_left=False)
    for row in hourly:
        cells = [fmt.format(row[k]) for (_, fmt), k in zip(columns, keys, strict=True)]
        cells[5:7] = [number(row["load_mw"]), number(row["peak_load_mw"])]
        table.add_row(*cells)
    console.print(keep_words(table, console.width))
    day = new_table("Day", show_header=False)
    add_columns(day, ["kpi", "value"])
    day.add_row(
        "nodes / links / zones",
        f"{summary['num_nodes']} / {summary['num_links']} / {summary['num_zones']}",
    )
    day.add_row("total travel time", f"{summary['travel_time_veh_h']:,.0f} veh·h")
    day.add_row("mean congestion (v/c)", f"{summary['mean_vc']:.3f}")
    day.add_row("mean travel time index", f"{summary['mean_travel_time_index']:.3f}")
    day.add_row("peak load", f"{summary['peak_load_mw']:,.1f} MW")
    day.add_row("energy", f"{summary['energy_mwh']:,.1f} MWh")
    day.add_row("mean carbon intensity", f"{summary['mean_carbon_g_per_kwh']:.1f} gCO2/kWh")
    day.add_row("emissions (city load)", f"{summary['emissions_t']:,.1f} tCO2")
    day.add_row("wall time", f"{summary['wall_s']:.2f} s")
    console.print(day)


def compute_share(infos: Sequence[Mapping[str, Any]]) -> float:
    """Compute's share of the cost over steps: (energy cost + weighted carbon cost) / total.

    >>> compute_share([{"cost_energy": 1.0, "cost_carbon": 0.5, "cost_total": 10.0},
    ...                {"cost_energy": 2.0, "cost_carbon": 0.5, "cost_total": 30.0}])
    0.1
    """
    compute = sum(info["cost_energy"] + info["cost_carbon"] for info in infos)
    total = sum(info["cost_total"] for info in infos)
    return compute / total if total > 0 else 0.0


def unused_by_hour(
    infos: Sequence[Mapping[str, Any]], budget_units: float
) -> list[dict[str, float]]:
    """Mean units used and left unused (budget minus used) per local hour, over all steps.

    Hours come in the order they were first simulated.

    >>> unused_by_hour([{"hour_local": 8.0, "units_used": 12.0},
    ...                 {"hour_local": 8.5, "units_used": 16.0},
    ...                 {"hour_local": 9.0, "units_used": 20.0}], 20.0)
    [{'hour': 8, 'used': 14.0, 'unused': 6.0}, {'hour': 9, 'used': 20.0, 'unused': 0.0}]
    """
    used: dict[int, list[float]] = {}
    for info in infos:
        used.setdefault(int(info["hour_local"]), []).append(float(info["units_used"]))
    rows = []
    for hour, values in used.items():
        mean = sum(values) / len(values)
        rows.append({"hour": hour, "used": mean, "unused": budget_units - mean})
    return rows


def print_compute_use(
    infos: Sequence[Mapping[str, Any]], budget_units: float, episodes: int
) -> None:
    """Compute's share of the day's cost, and the units left unused by hour."""
    compute = sum(info["cost_energy"] + info["cost_carbon"] for info in infos) / episodes
    total = sum(info["cost_total"] for info in infos) / episodes
    console.print(
        f"compute's share of the day's cost: {100 * compute_share(infos):.2f}% "
        f"(${number(compute)} of ${number(total)})"
    )
    table = new_table(
        "Units left unused by hour",
        caption=f"budget {budget_units:g}; mean of {episodes} day(s)",
        caption_justify="left",
    )
    add_columns(table, ["hour", "units used", "unused", "unused %"], first_left=False)
    for row in unused_by_hour(infos, budget_units):
        share = 100 * row["unused"] / budget_units if budget_units > 0 else 0.0
        used, unused = (round(row[key], 2) + 0.0 for key in ("used", "unused"))  # no "-0.00"
        table.add_row(f"{row['hour']:02d}:00", f"{used:.2f}", f"{unused:.2f}", f"{share:.1f}")
    console.print(table)
