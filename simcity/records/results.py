"""Run results: hourly and daily KPIs from step records, the local clock, and files on disk."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simcity.records.daylog import DayLog, day_log_files
from simcity.records.files import csv_rows
from simcity.records.runfolder import (
    EXPECTED,
    fail,
    read_run_file,
    verify_run_file,
    write_run_folder,
)
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
    extra: Mapping[str, bytes] | None = None,
) -> None:
    """Make ``out_dir`` the run folder of ``steps.csv``, ``episodes.json``, ``summary.json``
    and ``extra`` files (say ``emissions.csv``), replaced whole (`simcity.records.runfolder`).

    With ``day`` (the last episode's `DayLog`), also the files that maps and reports
    read: ``city.json``, ``day.npz`` and ``incidents.csv`` (see `simcity.records.daylog`).
    """
    files = {
        "steps.csv": steps_csv(rows).encode("utf-8"),
        "episodes.json": _json(list(episodes)),
        "summary.json": _json(summary),
        **(day_log_files(day) if day is not None else {}),
        **(extra or {}),
    }
    write_run_folder(out_dir, files)


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


_TEXT_KEYS = ("scenario", "title", "policy", "date", "timezone")
MAX_EPISODES = 1_000_000


def read_summary(run_dir: Path) -> dict[str, Any]:
    """``summary.json`` of a run folder, validated; `SimcityError` when missing or malformed.

    The keys maps and reports read must have their types: text is text, ``episodes`` a
    count, ``seeds`` as many whole numbers, ``kpis`` a table of ``{mean, ci95}`` numbers.
    """
    from simcity.records.dayread import parse_json

    path = Path(run_dir) / "summary.json"
    data = read_run_file(Path(run_dir), "summary.json")
    summary = parse_json(data, path)
    if not isinstance(summary, dict):
        raise fail("is not a JSON object", path)
    for key in _TEXT_KEYS:
        if key in summary and not (isinstance(summary[key], str) and len(summary[key]) < 10_000):
            raise fail("is not text", path, key)
    episodes = summary.get("episodes", 1)
    if type(episodes) is not int or not 1 <= episodes <= MAX_EPISODES:
        raise fail(f"is not a count from 1 to {MAX_EPISODES:,}", path, "episodes")
    seeds = summary.get("seeds", [0] * episodes)
    if (
        not isinstance(seeds, list)
        or len(seeds) != episodes
        or not all(type(s) is int and 0 <= s < 2**63 for s in seeds)
    ):
        raise fail(f"is not {episodes} seeds (whole numbers >= 0)", path, "seeds")
    kpis = summary.get("kpis", {})
    if not isinstance(kpis, dict):
        raise fail("is not a table of KPIs", path, "kpis")
    for key, stats in kpis.items():
        ok = isinstance(stats, dict) and all(_is_number(v) for v in stats.values())
        if not ok:
            raise fail("is not a table of numbers (mean, ci95)", path, f"kpis.{key}"[:80])
    for key in ("num_nodes", "num_links"):
        if key in summary and not (type(summary[key]) is int and summary[key] >= 0):
            raise fail("is not a count", path, key)
    verify_run_file(Path(run_dir), "summary.json", data)
    return summary


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def read_steps(run_dir: Path, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The named numeric columns of a run folder's ``steps.csv`` (every episode's steps),
    each value a finite number; ``episode`` whole numbers from 0, ``hour_local`` 0 to 24."""
    path = Path(run_dir) / "steps.csv"
    data = read_run_file(Path(run_dir), "steps.csv")
    rows = csv_rows(data, path, columns, EXPECTED)
    table = {}
    for column in columns:
        try:
            values = np.array([float(row[column]) for row in rows], dtype=np.float64)
        except (TypeError, ValueError):
            raise fail("has a value that is not a number", path, column) from None
        if not np.isfinite(values).all():
            raise fail("has NaN or infinite values", path, column)
        table[column] = values
    if not rows:
        raise fail("has no steps", path)
    if "episode" in table:
        episode = table["episode"]
        if (episode < 0).any() or (episode != np.round(episode)).any():
            raise fail("is not whole numbers from 0", path, "episode")
    if "hour_local" in table:
        hour = table["hour_local"]
        if (hour < 0).any() or (hour > 24).any():
            raise fail("holds hours outside 0 to 24", path, "hour_local")
    verify_run_file(Path(run_dir), "steps.csv", data)
    return table
