"""Carbon trace CSV files of one's own: timestamps, columns, gaps, and malformed files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from simcity.energy.carbon import (
    CarbonTraceWarning,
    read_carbon_trace,
)
from simcity.errors import SimcityError

SHARED_CARBON = Path(__file__).resolve().parents[3] / "shared" / "data" / "carbon"
CISO_GAPS_UTC = (
    "2022-01-05 10:00:00+00:00",
    "2022-05-17 18:00:00+00:00",
    "2022-06-13 18:00:00+00:00",
)
LA = "America/Los_Angeles"


HEADER = "timestamp,NG,avg_CI\n"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_other_column_names(tmp_path: Path) -> None:
    path = write(tmp_path, "time,ci\n2022-01-01T00:00Z,5\n2022-01-01T01:00Z,7\n")
    trace = read_carbon_trace(path, column="ci", time_column="time")
    assert trace.intensity_g_per_kwh.tolist() == [5.0, 7.0]


def test_gaps_are_interpolated_in_time_and_warned_once(tmp_path: Path) -> None:
    rows = [
        "2022-01-01 00:00:00+00:00,1,",  # leading gap: takes the nearest value
        "2022-01-01 01:00:00+00:00,1,100",
        "2022-01-01 02:00:00+00:00,,",
        "2022-01-01 03:00:00+00:00,1,nan",
        "2022-01-01 05:00:00+00:00,1,200",  # uneven spacing: interpolation is in time
    ]
    path = write(tmp_path, HEADER + "\n".join(rows) + "\n")
    with pytest.warns(CarbonTraceWarning) as record:
        trace = read_carbon_trace(path)
    assert len(record) == 1
    assert "3 blank" in str(record[0].message) and str(path) in str(record[0].message)
    assert trace.intensity_g_per_kwh.tolist() == [100.0, 100.0, 125.0, 150.0, 200.0]


def test_empty_rows_are_skipped(tmp_path: Path) -> None:
    text = HEADER + "2022-01-01 00:00:00+00:00,1,10\n\n,,\n2022-01-01 01:00:00+00:00,1,20\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = read_carbon_trace(write(tmp_path, text))
    assert trace.intensity_g_per_kwh.tolist() == [10.0, 20.0]


GOOD = "2022-01-01 00:00:00+00:00,1,10\n2022-01-01 01:00:00+00:00,1,20\n"
MALFORMED = {
    "no time column": ("NG,avg_CI\n1,10\n2,20\n", "timestamp", "no column"),
    "no value column": ("timestamp,NG\n2022-01-01,1\n2022-01-02,1\n", "avg_CI", "no column"),
    "bad timestamp": (
        HEADER + GOOD + "yesterday noon,1,30\n",
        "timestamp",
        "line 4: cannot read the time 'yesterday noon'",
    ),
    "missing timestamp": (HEADER + GOOD + ",1,30\n", "timestamp", "line 4"),
    "repeated timestamp": (
        HEADER + GOOD + "2022-01-01 01:00:00+00:00,1,30\n",
        "timestamp",
        "line 4: time '2022-01-01 01:00:00+00:00' is not after",
    ),
    "decreasing timestamp": (
        HEADER + "2022-01-01 05:00:00+00:00,1,10\n2022-01-01 04:00:00+00:00,1,10\n",
        "timestamp",
        "line 3",
    ),
    "negative intensity": (HEADER + GOOD + "2022-01-01 02:00:00+00:00,1,-4\n", "avg_CI", "line 4"),
    "non-numeric intensity": (
        HEADER + GOOD + "2022-01-01 02:00:00+00:00,1,high\n",
        "avg_CI",
        "line 4: 'high' is not a number",
    ),
    "infinite intensity": (HEADER + GOOD + "2022-01-01 02:00:00+00:00,1,inf\n", "avg_CI", "line 4"),
    "one row": (HEADER + "2022-01-01 00:00:00+00:00,1,10\n", "avg_CI", "1 data row"),
    "header only": (HEADER, "avg_CI", "0 data row"),
    "one value": (
        HEADER + "2022-01-01 00:00:00+00:00,1,10\n2022-01-01 01:00:00+00:00,1,\n",
        "avg_CI",
        "only 1 row",
    ),
    "all blank": (
        HEADER + "2022-01-01 00:00:00+00:00,1,\n2022-01-01 01:00:00+00:00,1,\n",
        "avg_CI",
        "all 2 values are blank",
    ),
    "empty file": ("", None, "empty"),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_files_raise(tmp_path: Path, kind: str) -> None:
    text, field, fragment = MALFORMED[kind]
    path = write(tmp_path, text, name="bad_trace.csv")
    with pytest.raises(SimcityError) as info:
        read_carbon_trace(path)
    error = info.value
    assert str(path) in str(error) and error.file == str(path)
    assert error.field == field
    assert fragment in error.message
    assert error.expected


def test_missing_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(SimcityError, match="no such file") as info:
        read_carbon_trace(path)
    assert str(path) in str(info.value)


def test_unreadable_file_raises(tmp_path: Path) -> None:
    with pytest.raises(SimcityError, match="is a folder, not a regular file") as info:
        read_carbon_trace(tmp_path)  # a directory
    assert str(tmp_path) in str(info.value)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"timestamp,avg_CI\n\xff\xfe\x00,1\n")
    with pytest.raises(SimcityError, match="not UTF-8"):
        read_carbon_trace(binary)


def test_error_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    text = HEADER + "2022-01-01 00:00:00+00:00,1,10\n\n\n2022-01-01 01:00:00+00:00,1,oops\n"
    with pytest.raises(SimcityError, match="line 5"):
        read_carbon_trace(write(tmp_path, text))
