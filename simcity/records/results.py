"""Run results: hourly and daily KPIs from step records, the local clock, and files on disk."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simcity.errors import SimcityError
from simcity.records.daylog import DayLog, write_day_log
from simcity.records.files import read_csv_rows, write_atomic
from simcity.world import StepRecord

MINUTES_PER_DAY = 24 * 60


def clock(hour_local: float) -> str:
    """``HH:MM`` of a local hour, to the nearest minute, wrapping past midnight.

    The one formatter of a time of day: rounding the whole time (not its minutes alone)
    never prints a 60th minute.

    >>> clock(8.25), clock(17.9999), clock(23.9999), clock(24.25), clock(-0.5)
    ('08:15', '18:00', '00:00', '00:15', '23:30')
    """
    minutes = round(float(hour_local) * 60.0) % MINUTES_PER_DAY
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def hourly_kpis(records: Sequence[StepRecord], dt_min: float) -> list[dict[str, float]]:
    """KPIs per simulated hour of local time, in the order the hours were simulated."""
    rows: dict[int, list[StepRecord]] = {}
    for record in records:
        rows.setdefault(int(record.hour_local), []).append(record)
    table = []
    for hour, group in rows.items():
        hours = len(group) * dt_min / 60.0
        table.append(
            {
                "hour": hour,
                "demand_veh_h": float(np.mean([r.demand_veh_h for r in group])),
                "travel_time_veh_h": float(sum(r.tstt_veh_h_per_h for r in group) * dt_min / 60),
                "travel_time_index": float(np.mean([r.travel_time_index for r in group])),
                "mean_vc": float(np.mean([r.mean_vc for r in group])),
                "load_mw": float(sum(r.energy_kwh for r in group) / hours / 1000.0),
                "peak_load_mw": float(max(r.load_kw for r in group) / 1000.0),
                "carbon_g_per_kwh": float(np.mean([r.carbon_g_per_kwh for r in group])),
            }
        )
    return table


def day_summary(records: Sequence[StepRecord], dt_min: float) -> dict[str, float]:
    """Whole-run KPIs."""
    energy_kwh = sum(r.energy_kwh for r in records)
    return {
        "num_steps": len(records),
        "simulated_h": len(records) * dt_min / 60.0,
        "travel_time_veh_h": float(sum(r.tstt_veh_h_per_h for r in records) * dt_min / 60),
        "mean_travel_time_index": float(np.mean([r.travel_time_index for r in records])),
        "mean_vc": float(np.mean([r.mean_vc for r in records])),
        "max_vc": float(max(r.max_vc for r in records)),
        "peak_load_mw": float(max(r.load_kw for r in records) / 1000.0),
        "energy_mwh": float(energy_kwh / 1000.0),
        "emissions_t": float(sum(r.emissions_kg for r in records) / 1000.0),
        "mean_carbon_g_per_kwh": float(np.mean([r.carbon_g_per_kwh for r in records])),
        "weighted_carbon_g_per_kwh": float(
            sum(r.emissions_kg for r in records) * 1000.0 / energy_kwh if energy_kwh else 0.0
        ),
        "mean_assignment_iterations": float(np.mean([r.assignment_iterations for r in records])),
        "max_assignment_rel_gap": float(max(r.assignment_rel_gap for r in records)),
    }


def steps_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Per-step rows (dicts with the same keys) as CSV text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_run(
    out_dir: Path,
    rows: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    episodes: Sequence[dict[str, Any]] = (),
    day: DayLog | None = None,
) -> None:
    """Write ``steps.csv``, ``episodes.json`` and ``summary.json``, each atomically.

    With ``day`` (the last episode's `DayLog`), also the files that maps and reports
    read: ``city.json``, ``day.npz`` and ``incidents.csv`` (see `simcity.records.daylog`).
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SimcityError("output path exists and is not a folder", file=out_dir, field="--out")
    write_atomic(out_dir / "steps.csv", steps_csv(rows))
    write_atomic(out_dir / "episodes.json", json.dumps(list(episodes), indent=2) + "\n")
    if day is not None:
        write_day_log(out_dir, day)
    write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")


def read_summary(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` of a run folder; `SimcityError` when missing or malformed."""
    path = run_dir / "summary.json"
    expected = "a run folder written by `simcity run --out`"
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SimcityError("missing file", file=path, expected=expected) from None
    except json.JSONDecodeError as err:
        raise SimcityError(f"not valid JSON: {err}", file=path, expected=expected) from None
    if not isinstance(summary, dict):
        raise SimcityError("is not a JSON object", file=path, expected=expected)
    return summary


def read_steps(run_dir: Path, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The named numeric columns of a run folder's ``steps.csv`` (every episode's steps)."""
    path = run_dir / "steps.csv"
    expected = "a run folder written by `simcity run --out`"
    rows = read_csv_rows(path, columns, expected)
    table = {}
    for column in columns:
        try:
            table[column] = np.array([float(row[column]) for row in rows])
        except (TypeError, ValueError):
            raise SimcityError(
                "has a value that is not a number", file=path, field=column, expected=expected
            ) from None
    if not rows:
        raise SimcityError("has no steps", file=path, expected=expected)
    return table
