"""Grid carbon intensity: the real 2022 traces, time zones, and malformed files."""

from __future__ import annotations

import csv
import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simcity.energy.carbon import (
    CarbonTrace,
    CarbonTraceWarning,
    bundled_trace_path,
    constant_intensity,
    daily_intensity,
    local_times_to_utc_s,
    read_carbon_trace,
    trace_intensity,
    utc_s_to_local_hour,
)
from simcity.errors import SimcityError

SHARED_CARBON = Path(__file__).resolve().parents[3] / "shared" / "data" / "carbon"
CISO_GAPS_UTC = (
    "2022-01-05 10:00:00+00:00",
    "2022-05-17 18:00:00+00:00",
    "2022-06-13 18:00:00+00:00",
)
LA = "America/Los_Angeles"


def utc_s(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def raw_value(path: Path, timestamp: str) -> float:
    """The avg_CI cell of one row, read straight from the CSV."""
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            if row["timestamp"] == timestamp:
                return float(row["avg_CI"])
    raise AssertionError(f"no row {timestamp}")


def read_ciso(path: Path) -> CarbonTrace:
    """The CAISO trace: the raw one warns of its 3 blank hours, the bundled one is filled."""
    if path.parent == SHARED_CARBON:
        with pytest.warns(CarbonTraceWarning) as record:
            trace = read_carbon_trace(path)
        assert len(record) == 1
        return trace
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_carbon_trace(path)


@pytest.fixture(params=["shared", "bundled"])
def carbon_dir(request: pytest.FixtureRequest) -> Path:
    """The reference data beside the clone, and the copies shipped in the package."""
    if request.param == "shared":
        return SHARED_CARBON
    return bundled_trace_path("CISO").parent


# --- the real traces -------------------------------------------------------------------


def test_ciso_trace_figures(carbon_dir: Path) -> None:
    path = carbon_dir / "CISO_2022_hourly.csv"
    if carbon_dir == SHARED_CARBON:
        with pytest.warns(CarbonTraceWarning) as record:
            trace = read_carbon_trace(path)
        assert len(record) == 1
        message = str(record[0].message)
        assert "3 blank" in message and "CISO_2022_hourly.csv" in message and "avg_CI" in message
    else:  # packaged with the blank hours filled by the loader's rule
        trace = read_ciso(path)

    assert len(trace.time_s) == len(trace.intensity_g_per_kwh) == 8760
    assert trace.time_s[0] == utc_s("2022-01-01 00:00:00+00:00")
    assert np.all(np.diff(trace.time_s) == 3600.0)
    assert not np.any(np.isnan(trace.intensity_g_per_kwh))
    assert trace.source == str(path)

    gap_index = [int(np.flatnonzero(trace.time_s == utc_s(t))[0]) for t in CISO_GAPS_UTC]
    present = np.delete(trace.intensity_g_per_kwh, gap_index)
    assert len(present) == 8757
    assert present.mean() == pytest.approx(256.19, abs=0.01)
    assert round(float(present.min()), 1) == 74.1
    assert round(float(present.max()), 1) == 449.0
    # Isolated hourly gaps: linear interpolation is the mean of the two neighbours.
    for k in gap_index:
        neighbours = trace.intensity_g_per_kwh[[k - 1, k + 1]]
        assert trace.intensity_g_per_kwh[k] == pytest.approx(neighbours.mean())


def test_ciso_daily_minimum_is_around_midday_local(carbon_dir: Path) -> None:
    trace = read_ciso(carbon_dir / "CISO_2022_hourly.csv")
    hour = np.floor(utc_s_to_local_hour(trace.time_s, LA)).astype(int)
    profile = np.array([trace.intensity_g_per_kwh[hour == h].mean() for h in range(24)])
    assert 10 <= int(np.argmin(profile)) < 14
    # Solar shows: midday is far cleaner than the night.
    assert profile.min() < 0.7 * profile[[0, 1, 2, 3]].mean()


def test_erco_trace_figures(carbon_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = read_carbon_trace(carbon_dir / "ERCO_2022_hourly.csv")
    assert len(trace.time_s) == 8760
    assert round(float(trace.intensity_g_per_kwh.mean()), 1) == 347.2
    assert round(float(trace.intensity_g_per_kwh.min()), 1) == 110.7
    assert round(float(trace.intensity_g_per_kwh.max()), 1) == 516.7


def test_bundled_copies_match_the_reference_data() -> None:
    for name in ("CISO", "ERCO"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CarbonTraceWarning)
            bundled = read_carbon_trace(bundled_trace_path(name))
            shared = read_carbon_trace(SHARED_CARBON / f"{name}_2022_hourly.csv")
        np.testing.assert_array_equal(bundled.time_s, shared.time_s)
        np.testing.assert_array_equal(bundled.intensity_g_per_kwh, shared.intensity_g_per_kwh)


def test_trace_arrays_are_read_only() -> None:
    trace = read_carbon_trace(bundled_trace_path("ERCO"))
    with pytest.raises(ValueError):
        trace.intensity_g_per_kwh[0] = 0.0


def test_bundled_trace_names() -> None:
    assert bundled_trace_path("erco") == bundled_trace_path("ERCO")
    assert bundled_trace_path("Ciso").is_file()
    with pytest.raises(SimcityError, match="CISO, ERCO") as info:
        bundled_trace_path("PJM")
    assert info.value.field == "carbon.trace"


# --- time zones ------------------------------------------------------------------------


def test_known_utc_row_read_back_at_local_hour() -> None:
    """2022-07-01 20:00 UTC is 13:00 PDT: minute 780 of the local day in Los Angeles."""
    path = SHARED_CARBON / "CISO_2022_hourly.csv"
    trace = read_ciso(path)
    time_s = local_times_to_utc_s(dt.date(2022, 7, 1), LA, np.array([780.0]))
    assert time_s[0] == utc_s("2022-07-01 20:00:00+00:00")
    assert utc_s_to_local_hour(time_s, LA)[0] == 13.0
    expected = raw_value(path, "2022-07-01 20:00:00+00:00")
    assert trace_intensity(trace, time_s)[0] == pytest.approx(expected, rel=1e-12)
    # In winter the same local hour is an hour later in UTC (PST is UTC-8).
    winter = local_times_to_utc_s(dt.date(2022, 1, 10), LA, np.array([780.0]))
    assert winter[0] == utc_s("2022-01-10 21:00:00+00:00")


def test_spring_forward_day_counts_elapsed_minutes() -> None:
    """On 2022-03-13 Los Angeles jumps from 02:00 PST to 03:00 PDT: a 23-hour day."""
    minutes = np.array([0.0, 60.0, 120.0, 180.0, 1380.0])
    time_s = local_times_to_utc_s(dt.date(2022, 3, 13), LA, minutes)
    assert time_s[0] == utc_s("2022-03-13 08:00:00+00:00")  # midnight PST
    assert time_s[2] == utc_s("2022-03-13 10:00:00+00:00")
    # Elapsed minute 120 is 03:00 on the wall clock, minute 180 is 04:00.
    assert utc_s_to_local_hour(time_s, LA).tolist() == [0.0, 1.0, 3.0, 4.0, 0.0]
    next_midnight = local_times_to_utc_s(dt.date(2022, 3, 14), LA, np.array([0.0]))
    assert time_s[-1] == next_midnight[0]


def test_fall_back_day_has_25_hours() -> None:
    time_s = local_times_to_utc_s(dt.date(2022, 11, 6), LA, np.array([0.0, 60.0, 120.0, 1500.0]))
    assert time_s[0] == utc_s("2022-11-06 07:00:00+00:00")  # midnight PDT
    assert utc_s_to_local_hour(time_s, LA).tolist() == [0.0, 1.0, 1.0, 0.0]  # 01:00 twice
    next_midnight = local_times_to_utc_s(dt.date(2022, 11, 7), LA, np.array([0.0]))
    assert time_s[-1] == next_midnight[0]


def test_utc_zone_and_fractional_minutes() -> None:
    time_s = local_times_to_utc_s(dt.date(2022, 1, 1), "UTC", np.array([90.5]))
    assert time_s[0] == utc_s("2022-01-01 01:30:30+00:00")
    assert utc_s_to_local_hour(time_s, "UTC")[0] == pytest.approx(1.5 + 0.5 / 60)
    with pytest.raises(SimcityError, match="not finite"):
        utc_s_to_local_hour(np.array([np.nan]), "UTC")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "America/"])
def test_unknown_time_zone(zone: str) -> None:
    with pytest.raises(SimcityError, match="time zone") as info:
        local_times_to_utc_s(dt.date(2022, 1, 1), zone, np.array([0.0]))
    assert info.value.field == "timezone"
    with pytest.raises(SimcityError):
        utc_s_to_local_hour(np.array([0.0]), zone)


# --- interpolation in the trace --------------------------------------------------------


TOY = CarbonTrace(
    time_s=np.array([utc_s("2022-01-01 00:00:00+00:00"), utc_s("2022-01-01 02:00:00+00:00")]),
    intensity_g_per_kwh=np.array([100.0, 300.0]),
    source="toy.csv",
)


def test_linear_interpolation_between_samples() -> None:
    start = TOY.time_s[0]
    values = trace_intensity(TOY, start + np.array([0.0, 1800.0, 3600.0, 7200.0]))
    assert values.tolist() == [100.0, 150.0, 200.0, 300.0]


def test_times_outside_the_trace_raise() -> None:
    with pytest.raises(SimcityError) as info:
        trace_intensity(TOY, np.array([TOY.time_s[-1] + 1.0]))
    error = info.value
    assert error.file == "toy.csv" and error.field == "carbon"
    assert error.expected is not None
    assert "2022-01-01 00:00:00+00:00 to 2022-01-01 02:00:00+00:00" in error.expected
    assert "2022-01-01 02:00:01" in error.message
    with pytest.raises(SimcityError):
        trace_intensity(TOY, np.array([TOY.time_s[0] - 1.0]))
    with pytest.raises(SimcityError, match="not finite"):
        trace_intensity(TOY, np.array([np.nan]))


def test_wrap_year_reuses_the_trace_year() -> None:
    trace = read_carbon_trace(bundled_trace_path("ERCO"))
    path = bundled_trace_path("ERCO")
    july = raw_value(path, "2022-07-01 20:00:00+00:00")
    for text in ("2023-07-01 20:00:00+00:00", "2020-07-01 20:00:00+00:00"):
        assert trace_intensity(trace, np.array([utc_s(text)]), wrap_year=True)[0] == july
    assert trace_intensity(trace, utc_s("2022-07-01 20:00:00+00:00"), wrap_year=True) == july
    # 29 February has no 2022 twin: it reads 28 February.
    leap = trace_intensity(trace, np.array([utc_s("2024-02-29 12:00:00+00:00")]), wrap_year=True)
    assert leap[0] == raw_value(path, "2022-02-28 12:00:00+00:00")
    # After 2022's last sample (23:00 on 31 December) the year wraps to its first sample.
    first = raw_value(path, "2022-01-01 00:00:00+00:00")
    last = raw_value(path, "2022-12-31 23:00:00+00:00")
    times = np.array([utc_s("2022-12-31 23:30:00+00:00"), utc_s("2023-12-31 23:45:00+00:00")])
    wrapped = trace_intensity(trace, times, wrap_year=True)
    np.testing.assert_allclose(wrapped, [(first + last) / 2, last + 0.75 * (first - last)])
    with pytest.raises(SimcityError, match="wrap_year"):
        trace_intensity(trace, times)


def test_wrap_year_on_a_partial_trace_still_checks_the_span() -> None:
    inside = utc_s("2025-01-01 01:00:00+00:00")
    assert trace_intensity(TOY, np.array([inside]), wrap_year=True).tolist() == [200.0]
    with pytest.raises(SimcityError, match="outside"):
        trace_intensity(TOY, np.array([utc_s("2025-06-01 00:00:00+00:00")]), wrap_year=True)


# --- parametric curves -----------------------------------------------------------------


def test_daily_intensity_shape() -> None:
    hours = np.arange(0.0, 24.0, 0.25)
    values = daily_intensity(hours, 250.0, 100.0, min_hour=13.0)
    assert hours[np.argmin(values)] == 13.0 and values.min() == pytest.approx(150.0)
    assert hours[np.argmax(values)] == 1.0 and values.max() == pytest.approx(350.0)
    assert values.mean() == pytest.approx(250.0)
    assert daily_intensity(13.0 + 24.0, 250.0, 100.0) == pytest.approx(150.0)


@pytest.mark.parametrize(
    ("mean", "amplitude", "field"),
    [(100.0, 150.0, "amplitude_g_per_kwh"), (-1.0, 0.0, "mean_g_per_kwh"),
     (100.0, -5.0, "amplitude_g_per_kwh"), (np.inf, 0.0, "mean_g_per_kwh")],
)  # fmt: skip
def test_daily_intensity_rejects_bad_parameters(mean: float, amplitude: float, field: str) -> None:
    with pytest.raises(SimcityError) as info:
        daily_intensity(np.array([0.0]), mean, amplitude)
    assert info.value.field == field


@given(
    hours=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=50),
    mean=st.floats(0.0, 2000.0),
    fraction=st.floats(0.0, 1.0),
    min_hour=st.floats(0.0, 24.0),
)
def test_daily_intensity_never_negative(
    hours: list[float], mean: float, fraction: float, min_hour: float
) -> None:
    values = daily_intensity(np.array(hours), mean, mean * fraction, min_hour)
    assert np.all(np.isfinite(values)) and np.all(values >= 0)


def test_constant_intensity() -> None:
    assert constant_intensity(np.zeros(3), 42.0).tolist() == [42.0] * 3
    with pytest.raises(SimcityError) as info:
        constant_intensity(np.zeros(3), -1.0)
    assert info.value.field == "intensity_g_per_kwh"


# --- reading files ---------------------------------------------------------------------


HEADER = "timestamp,NG,avg_CI\n"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_naive_timestamps_are_utc_and_offsets_convert(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timestamp,NG,avg_CI\n" + "2022-01-01 00:00:00,1,10\n2022-01-01 02:00:00+01:00,1,20\n",
    )
    trace = read_carbon_trace(path)
    midnight_utc = utc_s("2022-01-01 00:00:00+00:00")
    assert trace.time_s.tolist() == [midnight_utc, midnight_utc + 3600.0]
    assert trace.intensity_g_per_kwh.tolist() == [10.0, 20.0]
