"""`simcity validate` on hostile inputs, in-process through typer's CliRunner: exit 2 with
one line naming the file and the field (never a traceback or a hang), names printed
verbatim (no emoji, no markup), and every check `run` makes done without the day."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hostile_scenarios import deadline, good, to_toml, with_value, write
from typer.testing import CliRunner

from agents.cli.main import app
from hostile.test_scenario_files import ENCODINGS, REFUSED, SPECIALS, _special
from simcity.config.scenario import bundled_scenarios, load_scenario

runner = CliRunner()


def validate(path: Path | str) -> tuple[int, str]:
    with deadline():
        result = runner.invoke(app, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


def one_error_line(path: Path | str, field: str | None = None) -> str:
    """Validate ``path``: exit 2 and one ``error:`` line naming the file (and ``field``)."""
    code, output = validate(path)
    assert code == 2, output
    lines = output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    if field is not None:
        assert f": {field}: " in output, output
    return lines[0]


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_every_bundled_scenario_validates(name: str) -> None:
    code, output = validate(name)
    assert code == 0, output
    assert output.splitlines()[-1].startswith(f"ok {name}: ")


# --- the scenario-file corpus through the command line --------------------------------


@pytest.mark.parametrize(("field", "value", "base"), REFUSED[::3])
def test_a_refused_value_exits_2_naming_file_and_field(
    tmp_path: Path, field: str, value: Any, base: Any
) -> None:
    path = write(tmp_path, with_value(field, value, base()))
    line = one_error_line(path)
    assert str(path.resolve()) in line
    named = line.removeprefix(f"error: {path.resolve()}: ").split(": ", 1)[0]
    assert field.startswith(named) or named.startswith(field), line


@pytest.mark.parametrize("kind", sorted(ENCODINGS))
def test_bytes_that_are_not_a_scenario_exit_2(tmp_path: Path, kind: str) -> None:
    path = write(tmp_path, ENCODINGS[kind])
    assert str(path.resolve()) in one_error_line(path)


@pytest.mark.parametrize("kind", SPECIALS)
def test_a_special_file_or_base_exits_2_at_once(tmp_path: Path, kind: str) -> None:
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    name = _special(tmp_path, kind)
    os.environ["SIMCITY_CANARY"] = "canary-value-never-printed"
    line = one_error_line(name if name.startswith("/") else tmp_path / name)
    assert "canary-value" not in line
    child = write(tmp_path, f"base = {to_toml({'b': name}).split(' = ', 1)[1]}name = 'c'\n")
    line = one_error_line(child, "base")
    assert "canary-value" not in line


# --- what `run` checks beyond the file: validate checks it too ------------------------


def _trace_scenario(tmp_path: Path, csv: bytes | str, table: str = "carbon") -> Path:
    write(tmp_path, csv, "trace.csv")
    raw = good()
    raw[table] = {"source": "trace", "path": "trace.csv"}
    return write(tmp_path, raw)


GOOD_ROWS = "timestamp,avg_CI\n2022-01-01 00:00:00+00:00,300\n2022-12-31 23:00:00+00:00,310\n"
TRACES = {
    "no-column": "timestamp,other\n2022-01-01 00:00:00+00:00,300\n",
    "empty": "",
    "one-row": "timestamp,avg_CI\n2022-01-01 00:00:00+00:00,300\n",
    "bad-time": "timestamp,avg_CI\nyesterday,300\ntomorrow,301\n",
    "bad-value": "timestamp,avg_CI\n2022-01-01 00:00:00+00:00,lots\n2022-01-01 01:00:00+00:00,1\n",
    "negative": "timestamp,avg_CI\n2022-01-01 00:00:00+00:00,-5\n2022-01-01 01:00:00+00:00,-1\n",
    "latin-1": "timestamp,avg_CI\n2022-01-01 00:00:00+00:00,3é0\n".encode("latin-1"),
    "binary": bytes(range(256)) * 4,
    "short-year": GOOD_ROWS.replace("2022-12-31", "2022-01-02"),
}


@pytest.mark.parametrize("table", ["carbon", "datacentre_carbon"])
@pytest.mark.parametrize("kind", sorted(TRACES))
def test_a_carbon_trace_that_run_rejects_fails_validate(
    tmp_path: Path, kind: str, table: str
) -> None:
    path = _trace_scenario(tmp_path, TRACES[kind], table)
    if kind == "short-year":  # a trace that misses the scenario's date, without wrapping
        raw = good()
        raw[table] = {"source": "trace", "path": "trace.csv", "wrap_year": False}
        raw["time"] = {"date": "2022-07-12"}
        path = write(tmp_path, raw)
    load_scenario(path)  # the file itself is fine: only reading the trace finds the fault
    assert "trace.csv" in one_error_line(path)


def test_a_good_trace_validates(tmp_path: Path) -> None:
    code, output = validate(_trace_scenario(tmp_path, GOOD_ROWS))
    assert code == 0, output


def test_a_node_name_of_no_node_fails_validate_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, {**good(), "node_names": {"99": "Nowhere"}})
    load_scenario(path)
    one_error_line(path, "node_names.99")


@pytest.mark.parametrize(
    "graphml",
    [
        "not xml at all",
        '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<graph edgedefault="directed"></graph></graphml>',
        b"\xff\xfe<\x00g\x00",
    ],
)
def test_a_graphml_city_that_cannot_be_built_fails_validate(
    tmp_path: Path, graphml: str | bytes
) -> None:
    write(tmp_path, graphml, "city.graphml")
    path = write(tmp_path, {**good(), "city": {"source": "graphml", "path": "city.graphml"}})
    load_scenario(path)
    assert "city.graphml" in one_error_line(path)


def test_a_tntp_folder_without_files_fails_validate(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    path = write(tmp_path, {**good(), "city": {"source": "tntp", "path": "net"}})
    load_scenario(path)
    one_error_line(path)


def test_a_policy_device_from_a_devices_file_is_checked(tmp_path: Path) -> None:
    write(tmp_path, "[g]\nprecision = 'fp16'\n", "devices.toml")
    raw = with_value("compute.devices_file", "devices.toml")
    raw["compute"]["policy_device"] = "g"
    one_error_line(write(tmp_path, raw), "compute.devices_file")


# --- names print verbatim: no emoji, no markup, one line ------------------------------


@pytest.mark.parametrize(
    "name",
    [":x: bad.toml", "[bold]b.toml", "[red]", "a\\", ":smile:[red]x", "tab\there.toml"],
)
def test_file_names_print_verbatim(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, with_value("time.dt_min", 1e-300), name)
    line = one_error_line(path, "time.dt_min")
    shown = str(path.resolve()).replace("\t", "\\t")
    assert shown in line, line
    assert "\u274c" not in line and "\U0001f604" not in line  # no emoji


def test_a_newline_in_a_file_name_stays_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, with_value("time.dt_min", 1e-300), "two\nlines.toml")
    line = one_error_line(path)
    assert "two\\nlines.toml" in line


def test_a_scenario_name_with_markup_validates_verbatim(tmp_path: Path) -> None:
    path = write(tmp_path, with_value("name", "[red]:x:[/red]"))
    code, output = validate(path)
    assert code == 0, output
    assert "ok [red]:x:[/red]: 9 nodes" in output
