"""The report's comparison data: capacity used by hour of day, and a Pareto front.

Capacity comes from a run folder's ``steps.csv`` (``units_used`` is the budget less the
share the policy left on the unused slot); the front from the ``points.csv`` that
``simcity pareto --out`` writes.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simcity.errors import SimcityError
from simcity.records.files import read_csv_rows
from simcity.records.results import read_steps, read_summary

HOURS_PER_DAY = 24
NUM_EXTREME_HOURS = 6
CAPACITY_COLUMNS = ("hour_local", "units_used", "datacentre_g_per_kwh")
PARETO_FILE = "points.csv"
PARETO_EXPECTED = "a folder written by `simcity pareto --out`"
PARETO_NUMBERS = ("carbon_weight", "budget_units")
# Empty for a point none of whose runs finished (`agents.green.pareto` writes NaN as "").
PARETO_OBJECTIVES = ("service_cost", "compute_kgco2", "money")
PARETO_COLUMNS = ("kind", "policy", *PARETO_NUMBERS, *PARETO_OBJECTIVES, "pareto")
PARETO_OPTIONAL = ("detection_rate",)


def hourly_means(hour_local: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (T,) by local hour of day (24,); NaN for hours with no step.

    A step counts for the hour its ``hour_local`` (the middle of the step) falls in.

    >>> hourly_means(np.array([0.25, 0.75, 1.5, 0.25]), np.array([1.0, 3.0, 5.0, 5.0]))[:3].tolist()
    [3.0, 5.0, nan]
    """
    hour = np.floor(np.asarray(hour_local, dtype=np.float64)).astype(int) % HOURS_PER_DAY
    total = np.bincount(hour, weights=values, minlength=HOURS_PER_DAY)
    count = np.bincount(hour, minlength=HOURS_PER_DAY)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def extreme_hours(
    intensity: np.ndarray, num: int = NUM_EXTREME_HOURS
) -> tuple[np.ndarray, np.ndarray]:
    """The ``num`` dirtiest and ``num`` cleanest hours of an hourly trace (24,), NaN skipped.

    The two sets never share an hour: with fewer than ``2 * num`` hours each side gets
    half of them, and among equally dirty hours the earlier count as cleaner.

    >>> dirty, clean = extreme_hours(np.array([5.0, 1.0, 3.0, np.nan, 4.0] + [np.nan] * 19), 2)
    >>> dirty.tolist(), clean.tolist()
    ([0, 4], [1, 2])
    """
    hours = np.flatnonzero(np.isfinite(intensity))
    num = min(num, len(hours) // 2)
    order = hours[np.argsort(intensity[hours], kind="stable")]  # cleanest first
    return np.sort(order[len(order) - num :]), np.sort(order[:num])


@dataclass(frozen=True)
class HourlyCapacity:
    """One run's mean monitoring units used and data-centre carbon intensity by local hour."""

    label: str
    episodes: int
    units_used: np.ndarray  # (24,) NaN for hours the run has no step in
    intensity_g_per_kwh: np.ndarray  # (24,)
    dirty_hours: np.ndarray  # hours of day, ascending
    clean_hours: np.ndarray

    @property
    def dirty_units(self) -> float:
        """Mean units used over the dirtiest hours."""
        return _mean(self.units_used[self.dirty_hours])

    @property
    def clean_units(self) -> float:
        return _mean(self.units_used[self.clean_hours])

    @property
    def dirty_to_clean(self) -> float:
        """Units used in the dirtiest hours over those in the cleanest (< 1: carbon-aware)."""
        clean = self.clean_units
        return self.dirty_units / clean if clean > 0 else math.nan

    @property
    def dirty_g_per_kwh(self) -> float:
        """Mean carbon intensity of the dirtiest hours."""
        return _mean(self.intensity_g_per_kwh[self.dirty_hours])

    @property
    def clean_g_per_kwh(self) -> float:
        return _mean(self.intensity_g_per_kwh[self.clean_hours])

    @property
    def flat_trace(self) -> bool:
        """Whether the dirtiest and cleanest hours are equally dirty (the split is arbitrary)."""
        return not self.dirty_g_per_kwh > self.clean_g_per_kwh * (1 + 1e-9)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


def run_label(run_dir: Path, summary: dict[str, Any]) -> str:
    """``policy (folder)``: a checkpoint policy by its folder (or file stem), like the front."""
    folder = run_dir.resolve().name
    policy = str(summary.get("policy") or "")
    if not policy:
        return folder
    path = Path(policy)
    if path.suffix in (".pt", ".pth"):
        generic = path.stem in ("checkpoint", "policy") and path.parent.name
        policy = path.parent.name if generic else path.stem
    return f"{policy} ({folder})"


def read_capacity(run_dir: Path) -> HourlyCapacity:
    """A run folder's units used and carbon intensity by hour, over all its episodes."""
    summary = read_summary(run_dir)
    steps = read_steps(run_dir, CAPACITY_COLUMNS)
    units = hourly_means(steps["hour_local"], steps["units_used"])
    intensity = hourly_means(steps["hour_local"], steps["datacentre_g_per_kwh"])
    dirty, clean = extreme_hours(intensity)
    return HourlyCapacity(
        label=run_label(run_dir, summary),
        episodes=int(summary.get("episodes", 1)),
        units_used=units,
        intensity_g_per_kwh=intensity,
        dirty_hours=dirty,
        clean_hours=clean,
    )


@dataclass(frozen=True)
class ParetoPoints:
    """The points of a ``simcity pareto`` folder, numbers parsed, ``pareto`` a bool."""

    path: Path
    points: list[dict[str, Any]]

    @property
    def front(self) -> list[dict[str, Any]]:
        """The non-dominated points, cheapest service first."""
        front = [p for p in self.points if p["pareto"]]
        return sorted(front, key=lambda p: (p["service_cost"], p["compute_kgco2"]))


def read_pareto(folder: Path) -> ParetoPoints:
    """``points.csv`` of a ``simcity pareto --out`` folder; `SimcityError` when it is not one."""
    if not folder.is_dir():
        raise SimcityError(
            "no such folder", file=folder, field="--pareto", expected=PARETO_EXPECTED
        )
    path = folder / PARETO_FILE
    try:
        rows = read_csv_rows(path, PARETO_COLUMNS, PARETO_EXPECTED)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SimcityError(f"cannot read: {err}", file=path, expected=PARETO_EXPECTED) from None
    if not rows:
        raise SimcityError("has no points", file=path, expected=PARETO_EXPECTED)
    points = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        point: dict[str, Any] = {"kind": row["kind"] or "", "policy": row["policy"] or ""}
        for column in (*PARETO_NUMBERS, *PARETO_OBJECTIVES, *PARETO_OPTIONAL):
            if column in row:
                blank_ok = column not in PARETO_NUMBERS
                point[column] = _number(row[column], blank_ok, path, line, column)
        flag = (row["pareto"] or "").strip().lower()
        if flag not in ("true", "false"):
            raise SimcityError(
                f"line {line}: is {row['pareto']!r}",
                file=path,
                field="pareto",
                expected="true or false",
            )
        point["pareto"] = flag == "true"
        if point["pareto"]:
            for column in PARETO_OBJECTIVES:
                if not math.isfinite(point[column]):
                    raise SimcityError(
                        f"line {line}: is empty on a point of the front",
                        file=path,
                        field=column,
                        expected="a number",
                    )
        points.append(point)
    return ParetoPoints(path, points)


def _number(text: str | None, blank_ok: bool, path: Path, line: int, column: str) -> float:
    """A CSV cell as a float: blank is NaN where allowed; anything else not a number fails."""
    if text is not None and text.strip() == "" and blank_ok:
        return math.nan
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise SimcityError(
            f"line {line}: is {text!r}", file=path, field=column, expected="a finite number"
        )
    return value
