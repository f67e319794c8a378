"""Grid carbon intensity (gCO2/kWh) over time: a constant, a daily curve, or an hourly trace.

Pure functions over NumPy arrays. Times are UTC epoch seconds (`time_s`, float64); a city
runs on local time, so `local_times_to_utc_s` turns simulated local minutes into UTC and
`utc_s_to_local_hour` goes back to the wall clock.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import warnings
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from simcity.errors import SimcityError
from simcity.safe_io import excerpt, read_text

_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "carbon"
_BUNDLED = {"CISO": "CISO_2022_hourly.csv", "ERCO": "ERCO_2022_hourly.csv"}
_GAP_CELLS = frozenset({"", "nan"})
"""Cell values (stripped, lower-cased) that mean "no value here": filled by interpolation."""

_TIME_EXPECTED = "an ISO 8601 time such as '2022-01-01 00:00:00+00:00'"

MAX_INTENSITY_G_PER_KWH = 5000.0
"""Above any grid: coal and lignite plants emit about 800-1,300 gCO2/kWh, so a larger
value is a unit mistake (kg, or lb/MWh) rather than a dirty hour."""
MIN_YEAR, MAX_YEAR = 1900, 2200
"""Trace times outside these UTC years are refused (far ones break calendar arithmetic)."""
_FIRST_TIME_S = dt.datetime(MIN_YEAR, 1, 1, tzinfo=dt.UTC).timestamp()
_END_TIME_S = dt.datetime(MAX_YEAR + 1, 1, 1, tzinfo=dt.UTC).timestamp()


class CarbonTraceWarning(UserWarning):
    """A carbon trace was usable but had to be repaired (blank values filled)."""


class CarbonTrace(NamedTuple):
    """Grid carbon intensity sampled at increasing UTC times (arrays are read-only)."""

    time_s: np.ndarray  # (T,) UTC epoch seconds, float64, strictly increasing
    intensity_g_per_kwh: np.ndarray  # (T,) >= 0, no NaN
    source: str  # file it was read from, for error messages


def bundled_trace_path(name: str) -> Path:
    """Path of a carbon trace shipped with simcity: "CISO" (California) or "ERCO" (Texas).

    Both are hourly 2022 traces derived from U.S. EIA data (published with
    HewlettPackard/dc-rl, MIT licence). The name is case-insensitive.

    >>> bundled_trace_path("ciso").name
    'CISO_2022_hourly.csv'
    """
    key = name.strip().upper()
    if key not in _BUNDLED:
        raise SimcityError(
            f"no bundled carbon trace named {name!r}",
            field="carbon.trace",
            expected="one of " + ", ".join(sorted(_BUNDLED)),
        )
    return _DATA_DIR / _BUNDLED[key]


def read_carbon_trace(
    path: str | Path, column: str = "avg_CI", time_column: str = "timestamp"
) -> CarbonTrace:
    """Read an hourly carbon-intensity CSV (a header row, then one row per time).

    ``time_column`` holds ISO 8601 times (``2022-01-01 00:00:00+00:00``); times with an
    offset are converted to UTC, and times without one are taken to be UTC already.
    ``column`` holds the intensity in gCO2/kWh. Other columns are ignored.

    Real data has gaps: an empty cell (or ``nan``) in ``column`` is filled by linear
    interpolation in time between its neighbours (a gap at either end takes the nearest
    value), and one `CarbonTraceWarning` says how many were filled. Rows whose every cell
    is empty are skipped. The file is read through `simcity.safe_io` (a regular UTF-8 file
    of bounded size); intensities must be finite, from 0 to `MAX_INTENSITY_G_PER_KWH`, and
    times in the UTC years `MIN_YEAR` to `MAX_YEAR`. Anything else unusable raises
    `SimcityError` naming the file, the column and, where it applies, the line.

    >>> trace = read_carbon_trace(bundled_trace_path("ERCO"))
    >>> len(trace.time_s), round(float(trace.intensity_g_per_kwh.mean()), 1)
    (8760, 347.2)
    """
    lines, time_cells, value_cells = _read_columns(path, column, time_column)
    time_s = _parse_times(path, time_column, lines, time_cells)
    intensity, num_filled = _parse_intensities(path, column, lines, value_cells, time_s)
    if num_filled:
        warnings.warn(
            f"{path}: {column}: filled {num_filled} blank value(s) by linear interpolation in time",
            CarbonTraceWarning,
            stacklevel=2,
        )
    time_s.setflags(write=False)
    intensity.setflags(write=False)
    return CarbonTrace(time_s, intensity, str(path))


def _read_columns(
    path: str | Path, column: str, time_column: str
) -> tuple[list[int], list[str], list[str]]:
    """Line numbers, time cells and value cells of the non-empty data rows."""
    text = read_text(path, expected="an hourly carbon-intensity CSV (UTF-8 text)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next((row for row in reader if any(c.strip() for c in row)), None)
        if header is None:
            raise SimcityError(
                "the file is empty", file=path, expected="a CSV header row, then data rows"
            )
        names = [name.strip() for name in header]
        indices = []
        for name in (time_column, column):
            if name not in names:
                shown = ", ".join(excerpt(n, 30) for n in names[:20])
                shown += ", ..." if len(names) > 20 else ""
                raise SimcityError(
                    f"no column {excerpt(name)}",
                    file=path,
                    field=name,
                    expected="a header with one of: "
                    + shown
                    + (", ..." if len(names) > 20 else ""),
                )
            indices.append(names.index(name))
        i_time, i_value = indices
        lines, time_cells, value_cells = [], [], []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            lines.append(reader.line_num)
            time_cells.append(row[i_time] if i_time < len(row) else "")
            value_cells.append(row[i_value] if i_value < len(row) else "")
    except csv.Error as exc:
        raise SimcityError(
            f"line {reader.line_num}: not CSV ({excerpt(exc, 60)})",
            file=path,
            expected="a CSV text file",
        ) from None
    if len(lines) < 2:
        raise SimcityError(
            f"{len(lines)} data row(s)",
            file=path,
            field=column,
            expected="at least 2 rows to interpolate between",
        )
    return lines, time_cells, value_cells


def _parse_times(
    path: str | Path, time_column: str, lines: list[int], cells: list[str]
) -> np.ndarray:
    utc = dt.UTC
    times = np.empty(len(cells))
    for k, cell in enumerate(cells):
        try:
            stamp = dt.datetime.fromisoformat(cell.strip())
        except ValueError:
            raise SimcityError(
                f"line {lines[k]}: cannot read the time {excerpt(cell)}",
                file=path,
                field=time_column,
                expected=_TIME_EXPECTED,
            ) from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=utc)
        times[k] = stamp.timestamp()
        if not _FIRST_TIME_S <= times[k] < _END_TIME_S:
            raise SimcityError(
                f"line {lines[k]}: time {excerpt(cell)} is outside the years "
                f"{MIN_YEAR} to {MAX_YEAR}",
                file=path,
                field=time_column,
                expected=f"UTC times in the years {MIN_YEAR} to {MAX_YEAR}",
            )
    steps = np.diff(times)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0)) + 1
        raise SimcityError(
            f"line {lines[k]}: time {excerpt(cells[k].strip())} is not after the previous one "
            f"{excerpt(cells[k - 1].strip())}",
            file=path,
            field=time_column,
            expected="strictly increasing times",
        )
    return times


def _parse_intensities(
    path: str | Path, column: str, lines: list[int], cells: list[str], time_s: np.ndarray
) -> tuple[np.ndarray, int]:
    """Intensities with gaps filled, and how many were filled."""
    values = np.empty(len(cells))
    for k, cell in enumerate(cells):
        text = cell.strip()
        if text.lower() in _GAP_CELLS:
            values[k] = math.nan
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise SimcityError(
                f"line {lines[k]}: {excerpt(cell)} is not "
                + ("finite" if text.lower().lstrip("+-") in ("inf", "infinity") else "a number"),
                file=path,
                field=column,
                expected="a carbon intensity in gCO2/kWh, or an empty cell for a gap",
            )
        if not 0 <= value <= MAX_INTENSITY_G_PER_KWH:
            raise SimcityError(
                f"line {lines[k]}: intensity {value:g} is "
                + ("negative" if value < 0 else "more than any grid emits"),
                file=path,
                field=column,
                expected=f"a carbon intensity from 0 to {MAX_INTENSITY_G_PER_KWH:g} gCO2/kWh",
            )
        values[k] = value
    gaps = np.isnan(values)
    num_present = len(values) - int(gaps.sum())
    if num_present == 0:
        raise SimcityError(
            f"all {len(values)} values are blank",
            file=path,
            field=column,
            expected="carbon intensities in gCO2/kWh",
        )
    if num_present < 2:
        raise SimcityError(
            "only 1 row has a value",
            file=path,
            field=column,
            expected="at least 2 rows with a carbon intensity",
        )
    if gaps.any():
        values[gaps] = np.interp(time_s[gaps], time_s[~gaps], values[~gaps])
    return values, int(gaps.sum())


def trace_intensity(
    trace: CarbonTrace, time_s: np.ndarray | float, *, wrap_year: bool = False
) -> np.ndarray:
    """Carbon intensity (gCO2/kWh) at UTC epoch seconds, linearly interpolated in the trace.

    Times outside the trace's span raise `SimcityError`, so a scenario cannot silently run
    on a flat extrapolation. With ``wrap_year=True`` every time is first moved onto the
    trace's year (the UTC year of its first time) keeping its calendar date and time of
    day, so a scenario dated in another year uses the same day of 2022; 29 February maps
    to 28 February. If the trace covers its whole year (the gap from its last time round
    to its first is no longer than its longest step, as for the hourly 2022 traces) the
    year wraps: times after the last sample interpolate towards the first. Wrapping a
    trace that spans several years only ever reads its first year.

    >>> trace = CarbonTrace(np.array([0.0, 3600.0]), np.array([100.0, 200.0]), "demo")
    >>> trace_intensity(trace, np.array([0.0, 900.0, 3600.0])).tolist()
    [100.0, 125.0, 200.0]
    """
    times = np.asarray(time_s, dtype=np.float64)
    first, last = float(trace.time_s[0]), float(trace.time_s[-1])
    if not np.all(np.isfinite(times)):
        raise SimcityError(
            "a simulated time is not finite",
            file=trace.source,
            field="carbon",
            expected="finite UTC epoch seconds",
        )
    periodic = False
    if wrap_year:
        times, year_s = _onto_year(times, first), _year_length_s(first)
        # Gap from the last sample round to the first one a year later.
        gap_s = year_s - (last - first)
        periodic = 0 < gap_s <= float(np.max(np.diff(trace.time_s))) * (1 + 1e-9)
    inside = (times >= first) & (times <= last)
    if not wrap_year or not periodic:
        if not np.all(inside):
            bad = float(times[~inside].flat[0])
            raise SimcityError(
                f"time {_iso(bad)} is outside the carbon trace",
                file=trace.source,
                field="carbon",
                expected=f"simulated times within the trace's span {_iso(first)} to {_iso(last)}"
                + ("" if wrap_year else ", or wrap_year=True to reuse the trace's year"),
            )
        return np.interp(times, trace.time_s, trace.intensity_g_per_kwh)
    result = np.interp(times, trace.time_s, trace.intensity_g_per_kwh)
    outside = ~inside
    if np.any(outside):
        # Interpolate from the last sample to the first, one year on.
        after_last = np.where(times[outside] < first, times[outside] + year_s, times[outside])
        weight = (after_last - last) / gap_s
        v_first, v_last = trace.intensity_g_per_kwh[0], trace.intensity_g_per_kwh[-1]
        result[outside] = v_last + weight * (v_first - v_last)
    return result


def _iso(time_s: float) -> str:
    return dt.datetime.fromtimestamp(time_s, dt.UTC).isoformat(sep=" ")


def _year_length_s(time_s: float) -> float:
    year = dt.datetime.fromtimestamp(time_s, dt.UTC).year
    start = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    return (dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC) - start).total_seconds()


def _onto_year(time_s: np.ndarray, reference_s: float) -> np.ndarray:
    """The same calendar date and time of day in the UTC year of ``reference_s``."""
    whole = np.floor(time_s)
    stamp = whole.astype(np.int64).astype("datetime64[s]")
    month = stamp.astype("datetime64[M]")
    day = stamp.astype("datetime64[D]")
    month_of_year = (month - stamp.astype("datetime64[Y]")).astype(np.int64)
    day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64)
    seconds_of_day = (stamp - day).astype(np.int64) + (time_s - whole)
    year = np.datetime64(math.floor(reference_s), "s").astype("datetime64[Y]")
    target_month = year.astype("datetime64[M]") + month_of_year
    month_days = ((target_month + 1).astype("datetime64[D]") - target_month).astype(np.int64)
    target_day = target_month.astype("datetime64[D]") + np.minimum(day_of_month, month_days - 1)
    return target_day.astype("datetime64[s]").astype(np.int64) + seconds_of_day


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise SimcityError(
            f"unknown time zone {timezone!r}",
            field="timezone",
            expected="an IANA time zone name such as 'America/Los_Angeles' or 'UTC'",
        ) from None


def local_times_to_utc_s(date: dt.date, timezone: str, minutes: np.ndarray) -> np.ndarray:
    """UTC epoch seconds of simulated minutes after local midnight of ``date`` in ``timezone``.

    ``minutes`` is elapsed time since the start of the local day, not a wall-clock
    reading: minute ``m`` is local midnight plus ``m`` real minutes. So the simulation
    clock never jumps or repeats, and on a daylight-saving day (23 or 25 hours) the wall
    clock differs from ``m / 60`` after the change; `utc_s_to_local_hour` gives the wall
    clock. Where midnight itself does not exist (a zone that springs forward at 00:00),
    the day starts at the moment of the change.

    >>> utc = local_times_to_utc_s(dt.date(2022, 7, 1), "America/Los_Angeles", np.array([780]))
    >>> _iso(float(utc[0]))  # 13:00 PDT
    '2022-07-01 20:00:00+00:00'
    """
    midnight = dt.datetime.combine(date, dt.time(0), tzinfo=_zone(timezone))
    # PEP 495 fold=0 places a non-existent midnight at the transition instant itself.
    start_s = midnight.astimezone(dt.UTC).timestamp()
    return start_s + 60.0 * np.asarray(minutes, dtype=np.float64)


def utc_s_to_local_hour(time_s: np.ndarray, timezone: str) -> np.ndarray:
    """Local wall-clock hour of day (0 <= h < 24, fractional) at UTC epoch seconds.

    >>> utc_s_to_local_hour(np.array([1656705600.0]), "America/Los_Angeles").tolist()
    [13.0]
    """
    zone = _zone(timezone)
    times = np.asarray(time_s, dtype=np.float64)
    if not np.all(np.isfinite(times)):
        raise SimcityError("a time is not finite", field="time_s", expected="finite UTC seconds")
    offset_s = np.empty(times.shape)
    for k, t in enumerate(times.flat):
        offset = dt.datetime.fromtimestamp(t, zone).utcoffset()
        offset_s.flat[k] = 0.0 if offset is None else offset.total_seconds()
    return np.mod(times + offset_s, 86400.0) / 3600.0


def daily_intensity(
    hour_local: np.ndarray | float,
    mean_g_per_kwh: float,
    amplitude_g_per_kwh: float,
    min_hour: float = 13.0,
) -> np.ndarray:
    """A cosine daily curve of carbon intensity (gCO2/kWh), lowest at ``min_hour`` local.

    ``mean - amplitude * cos(2π (hour - min_hour) / 24)``; the default minimum at 13:00
    is the solar trough of a sunny grid (CISO's mean day bottoms out around midday).
    ``amplitude_g_per_kwh`` may not exceed ``mean_g_per_kwh``, so the curve is never
    negative.

    >>> daily_intensity(np.array([13.0, 19.0, 1.0]), 250.0, 100.0).round(6).tolist()
    [150.0, 250.0, 350.0]
    """
    _check_nonnegative("mean_g_per_kwh", mean_g_per_kwh)
    _check_nonnegative("amplitude_g_per_kwh", amplitude_g_per_kwh)
    if amplitude_g_per_kwh > mean_g_per_kwh:
        raise SimcityError(
            f"amplitude {amplitude_g_per_kwh} exceeds the mean {mean_g_per_kwh}",
            field="amplitude_g_per_kwh",
            expected="an amplitude <= mean_g_per_kwh, so intensity is never negative",
        )
    if not math.isfinite(min_hour):
        raise SimcityError(f"min_hour is {min_hour}", field="min_hour", expected="a finite hour")
    phase = 2.0 * np.pi * (np.asarray(hour_local, dtype=np.float64) - min_hour) / 24.0
    return np.maximum(mean_g_per_kwh - amplitude_g_per_kwh * np.cos(phase), 0.0)


def constant_intensity(time_s: np.ndarray | float, intensity_g_per_kwh: float) -> np.ndarray:
    """A constant carbon intensity (gCO2/kWh) at every time, shaped like ``time_s``.

    >>> constant_intensity(np.array([0.0, 60.0]), 300.0).tolist()
    [300.0, 300.0]
    """
    _check_nonnegative("intensity_g_per_kwh", intensity_g_per_kwh)
    return np.full(np.shape(time_s), float(intensity_g_per_kwh))


def _check_nonnegative(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise SimcityError(f"{name} is {value}", field=name, expected="a finite number >= 0")
