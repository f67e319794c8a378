"""Hostile carbon-intensity CSVs, and the bundled traces' packaging.

Every case must end at once in a `SimcityError` naming the file, the column and (where
there is one) the line, or in a valid trace; hypothesis mutates valid files the same way.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from hostile_files import FUZZ_EXAMPLES, SPECIAL, error_or_value, refused
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simcity.energy.carbon import (
    MAX_INTENSITY_G_PER_KWH,
    CarbonTrace,
    CarbonTraceWarning,
    bundled_trace_path,
    read_carbon_trace,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED_CARBON = ROOT.parent / "shared" / "data" / "carbon"
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
HEADER = "timestamp,other,avg_CI\n"
ROWS = [
    "2022-01-01 00:00:00+00:00,1,100.5",
    "2022-01-01 01:00:00+00:00,1,200",
    "2022-01-01 02:00:00+00:00,1,300",
]
GOOD = HEADER + "\n".join(ROWS) + "\n"


def csv_with(value: str, *, row: int = 1, column: int = 2) -> str:
    rows = [r.split(",") for r in ROWS]
    rows[row][column] = value
    return HEADER + "\n".join(",".join(r) for r in rows) + "\n"


def valid_trace(trace: CarbonTrace) -> None:
    assert len(trace.time_s) == len(trace.intensity_g_per_kwh) >= 2
    assert np.all(np.diff(trace.time_s) > 0)
    values = trace.intensity_g_per_kwh
    assert np.all(np.isfinite(values))
    assert np.all((values >= 0) & (values <= MAX_INTENSITY_G_PER_KWH))


def read_quietly(path: Path) -> CarbonTrace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CarbonTraceWarning)
        return read_carbon_trace(path)


CASES = {
    # intensities
    "infinite": (csv_with("inf"), "line 3: 'inf' is not finite"),
    "minus infinite": (csv_with("-inf"), "not finite"),
    "Infinity": (csv_with("Infinity"), "not finite"),
    "1e400": (csv_with("1e400"), "line 3"),
    "negative": (csv_with("-1"), "line 3: intensity -1 is negative"),
    "minus zero point one": (csv_with("-0.1"), "negative"),
    "absurd": (csv_with("5001"), "more than any grid emits"),
    "kg not g": (csv_with("4.2e5"), "from 0 to 5000"),
    "word": (csv_with("high"), "'high' is not a number"),
    "thousands comma": (csv_with('"1,000"'), "'1,000' is not a number"),
    "unit": (csv_with("250 g/kWh"), "not a number"),
    "control characters": (csv_with("\x1b[31m"), "not a number"),
    "hex": (csv_with("0x10"), "not a number"),
    # times
    "bad time": (csv_with("yesterday", column=0), "cannot read the time 'yesterday'"),
    "blank time": (csv_with("", column=0), "cannot read the time"),
    "repeated time": (csv_with(ROWS[0].split(",")[0], column=0), "not after the previous"),
    "time going back": (csv_with("2021-12-31 00:00:00+00:00", column=0), "not after"),
    "year 1800": (csv_with("1800-01-01 00:00:00+00:00", row=0, column=0), "1900 to 2200"),
    "year 9999": (csv_with("9999-12-31 23:59:59-05:00", row=2, column=0), "outside the years"),
    "year one": (csv_with("0001-01-01 00:00:00+05:00", row=0, column=0), "outside the years"),
    "offset past a day": (csv_with("2022-01-01 01:00:00+25:00", column=0), "cannot read"),
    # shape
    "empty": ("", "the file is empty"),
    "blank lines only": ("\n\n , \n", "the file is empty"),
    "header only": (HEADER, "0 data row(s)"),
    "one row": (HEADER + ROWS[0] + "\n", "1 data row(s)"),
    "no value column": (HEADER.replace("avg_CI", "ci") + ROWS[0] + "\n", "no column 'avg_CI'"),
    "no time column": (HEADER.replace("timestamp", "t") + ROWS[0] + "\n", "'timestamp'"),
    "10,000 columns": (",".join(f"c{k}" for k in range(10_000)) + "\n1\n", "..."),
    "all blank": (csv_with("", row=0).replace(",200", ",").replace(",300", ","), "all 3"),
    "one value": (csv_with("", row=0).replace(",200", ","), "only 1 row"),
    "unclosed quote": (HEADER + '2022-01-01 00:00:00+00:00,"1,100\n' + ROWS[1], "1 data row"),
    "field past the csv limit": (HEADER + "x" * 200_000 + ",1,1\n", "not CSV"),
    "NUL byte": (csv_with("1\x002"), "NUL"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_carbon_csv(tmp_path: Path, case: str) -> None:
    text, words = CASES[case]
    path = tmp_path / "trace.csv"
    path.write_text(text, encoding="utf-8")
    error = refused(lambda: read_quietly(path), str(path), words)
    assert "\x1b" not in str(error)


@pytest.mark.parametrize(
    ("case", "data", "words"),
    [
        ("Latin-1", ("timestamp,avg_CI\n2022-01-01,1\n# caf\xe9\n").encode("latin-1"), "UTF-8"),
        ("UTF-16", GOOD.encode("utf-16"), "UTF-16"),
        ("binary", bytes(range(256)) * 8, "UTF-8"),
    ],
)
def test_carbon_files_that_are_not_utf8(tmp_path: Path, case: str, data: bytes, words: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(data)
    refused(lambda: read_quietly(path), str(path), words)


@pytest.mark.parametrize("special", list(SPECIAL))
def test_special_carbon_files_end_at_once(tmp_path: Path, special: str) -> None:
    path = SPECIAL[special](tmp_path / "trace.csv")
    refused(lambda: read_quietly(path), str(path), "not a regular file")


@pytest.mark.parametrize(
    ("case", "text", "expected"),
    [
        ("byte-order mark", "\ufeff" + GOOD, [100.5, 200, 300]),
        ("CRLF", GOOD.replace("\n", "\r\n"), [100.5, 200, 300]),
        ("spaces around cells", GOOD.replace(",", " , "), [100.5, 200, 300]),
        ("at the ceiling", csv_with("5000"), [100.5, 5000, 300]),
        ("zero", csv_with("0"), [100.5, 0, 300]),
        ("exponent", csv_with("2e2"), [100.5, 200, 300]),
        ("quoted number", csv_with('"200"'), [100.5, 200, 300]),
        ("short row", csv_with("", column=1).replace(",,200", ",,200"), [100.5, 200, 300]),
    ],
)
def test_unusual_but_valid_traces(tmp_path: Path, case: str, text: str, expected: list) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = read_carbon_trace(path)
    valid_trace(trace)
    assert trace.intensity_g_per_kwh.tolist() == expected


@pytest.mark.parametrize("blank", ["", "nan", "NaN", " "])
def test_user_traces_with_blanks_still_warn(tmp_path: Path, blank: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(csv_with(blank), encoding="utf-8")
    with pytest.warns(CarbonTraceWarning, match="filled 1 blank"):
        trace = read_carbon_trace(path)
    assert trace.intensity_g_per_kwh.tolist() == [100.5, 200.25, 300]


# --- the bundled traces --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CISO", "ERCO"])
def test_bundled_traces_read_without_a_warning(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        valid_trace(read_carbon_trace(bundled_trace_path(name)))


def test_a_bundled_scenario_runs_without_a_carbon_warning() -> None:
    from simcity.config.scenario import load_scenario
    from simcity.energy.intensity import _trace, carbon_intensity

    _trace.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = carbon_intensity(load_scenario("downtown"), np.arange(0.0, 1440.0, 15.0))
    assert np.all(np.isfinite(values)) and len(values) == 96


needs_raw = pytest.mark.skipif(
    not SHARED_CARBON.is_dir(), reason=f"raw traces missing: {SHARED_CARBON}"
)


@needs_raw
def test_packaging_fills_exactly_the_loaders_values() -> None:
    """The raw CAISO trace still warns; the packaged one reads the same floats, bit for bit."""
    with pytest.warns(CarbonTraceWarning, match="filled 3 blank"):
        raw = read_carbon_trace(SHARED_CARBON / "CISO_2022_hourly.csv")
    packaged = read_quietly(bundled_trace_path("CISO"))
    assert raw.time_s.tobytes() == packaged.time_s.tobytes()
    assert raw.intensity_g_per_kwh.tobytes() == packaged.intensity_g_per_kwh.tobytes()


@needs_raw
def test_packaging_script_reproduces_the_committed_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "package_carbon_traces", ROOT / "tools" / "package_carbon_traces.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(SHARED_CARBON), str(bundled_trace_path("CISO").parent), "--check"]) == 0
    assert script.main([str(SHARED_CARBON), str(tmp_path)]) == 0
    for name in script.TRACES:
        assert (tmp_path / name).read_bytes() == (
            bundled_trace_path("CISO").parent / name
        ).read_bytes()
    # Only avg_CI of the three blank hours changed; every other byte is the raw file's.
    raw = (SHARED_CARBON / "CISO_2022_hourly.csv").read_text().splitlines()
    ours = (tmp_path / "CISO_2022_hourly.csv").read_text().splitlines()
    changed = [(a, b) for a, b in zip(raw, ours, strict=True) if a != b]
    assert len(changed) == 3
    assert all(b.startswith(a) and a.endswith(",,,,,,,,,") for a, b in changed)


# --- mutation fuzz -------------------------------------------------------------------------

PIECES = st.sampled_from(
    [*'0123456789.-+eE,:T Z\n\r"', "nan", "inf", "-1", "5001", "1e400", "9" * 30, "\x00", "é"]
)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        text = text[:start] + "".join(draw(st.lists(PIECES, max_size=3))) + text[end:]
    return text


@FUZZ
@given(data=st.data())
def test_mutated_traces_give_an_error_or_a_valid_trace(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text(data.draw(mutated(GOOD)), encoding="utf-8")
    trace = error_or_value(lambda: read_quietly(path))
    if trace is not None:
        valid_trace(trace)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_give_an_error_or_a_valid_trace(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(raw)
    trace = error_or_value(lambda: read_quietly(path))
    if trace is not None:
        valid_trace(trace)
