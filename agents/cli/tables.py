"""Tables the command line prints: hourly city KPIs, the day, monitoring KPIs."""

from __future__ import annotations

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
