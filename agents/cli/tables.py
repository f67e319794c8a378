"""Tables the command line prints: hourly city KPIs, the day, monitoring KPIs, compute use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def print_monitoring(policy: str, stats: dict[str, dict[str, float]], episodes: int) -> None:
    from agents.training.evaluate import KPIS

    table = Table(
        title=f"{policy}: {episodes} episode(s), mean ± 95%",
        title_justify="left",
    )
    table.add_column("kpi")
    table.add_column("mean", justify="right")
    table.add_column("± 95%", justify="right")
    for key, label in KPIS:
        mean, half = stats[key]["mean"], stats[key]["ci95"]
        table.add_row(label, number(mean), number(half) if episodes > 1 else "–")
    console.print(table)


def print_kpis(title: str, hourly: list[dict[str, float]], summary: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left")
    columns = [
        ("hour", "{:02.0f}:00"),
        ("demand veh/h", "{:,.0f}"),
        ("travel time veh·h", "{:,.0f}"),
        ("time index", "{:.3f}"),
        ("mean v/c", "{:.3f}"),
        ("load MW", "{:,.1f}"),
        ("peak MW", "{:,.1f}"),
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
    for name, _ in columns:
        table.add_column(name, justify="right")
    for row in hourly:
        table.add_row(*(fmt.format(row[k]) for (_, fmt), k in zip(columns, keys, strict=True)))
    console.print(table)
    day = Table(title="Day", title_justify="left", show_header=False)
    day.add_column("kpi")
    day.add_column("value", justify="right")
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
    table = Table(
        title="Units left unused by hour",
        title_justify="left",
        caption=f"budget {budget_units:g}; mean of {episodes} day(s)",
        caption_justify="left",
    )
    for name in ("hour", "units used", "unused", "unused %"):
        table.add_column(name, justify="right")
    for row in unused_by_hour(infos, budget_units):
        share = 100 * row["unused"] / budget_units if budget_units > 0 else 0.0
        used, unused = (round(row[key], 2) + 0.0 for key in ("used", "unused"))  # no "-0.00"
        table.add_row(f"{row['hour']:02d}:00", f"{used:.2f}", f"{unused:.2f}", f"{share:.1f}")
    console.print(table)
