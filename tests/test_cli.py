"""The command line: run, validate, scenarios; user errors exit 2 with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from simcity.cli import app

runner = CliRunner()


def test_scenarios_lists_the_bundle() -> None:
    result = runner.invoke(app, ["scenarios"])
    assert result.exit_code == 0, result.output
    for name in ("tiny", "downtown", "metro", "downtown_stadium"):
        assert name in result.output


def test_validate_ok_and_bad(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", "scenarios/tiny.toml"])
    assert result.exit_code == 0, result.output
    assert "16 nodes" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\n[city]\nsource = "grid"\nrows = -1\ncols = 2\norigin_lon = 0\norigin_lat = 0\n'
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "bad.toml" in result.output and "city.rows" in result.output
    assert "Traceback" not in result.output


def test_run_writes_results_atomically(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "tiny", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "peak load" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_steps"] == 96 and len(summary["hourly"]) == 24
    lines = (out / "steps.csv").read_text().splitlines()
    assert len(lines) == 97 and lines[0].startswith("step,time_min")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_run_into_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    result = runner.invoke(app, ["run", "tiny", "--out", str(target), "--quiet"])
    assert result.exit_code == 2
    assert target.read_text() == "keep me"


def _tntp(folder: Path, links: list[tuple[int, int]], zones: int, nodes: int) -> None:
    folder.mkdir()
    rows = "".join(f"\t{a}\t{b}\t1000\t1\t1\t0.15\t4\t0\t0\t1\t;\n" for a, b in links)
    (folder / "T_net.tntp").write_text(
        f"<NUMBER OF ZONES> {zones}\n<NUMBER OF NODES> {nodes}\n<FIRST THRU NODE> 1\n"
        f"<NUMBER OF LINKS> {len(links)}\n<END OF METADATA>\n\n"
        "~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\tspeed\ttoll\ttype\t;\n"
        + rows
    )
    trips = "".join(
        f"Origin {o}\n" + "".join(f"{d} : 10.0; " for d in range(1, zones + 1) if d != o) + "\n"
        for o in range(1, zones + 1)
    )
    (folder / "T_trips.tntp").write_text(
        f"<NUMBER OF ZONES> {zones}\n<TOTAL OD FLOW> {10.0 * zones * (zones - 1)}\n"
        "<END OF METADATA>\n\n" + trips
    )


def test_disconnected_od_pair_exits_2(tmp_path: Path) -> None:
    # Zones 1 and 2 are joined; zone 3 can be reached but cannot get back.
    _tntp(tmp_path / "net", [(1, 2), (2, 1), (2, 3)], zones=3, nodes=3)
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "d"\n[city]\nsource = "tntp"\npath = "net"\n[traffic]\ndemand = "tntp"\n'
    )
    result = runner.invoke(app, ["validate", str(scenario)])
    assert result.exit_code == 2, result.output
    assert "disconnected" in result.output


def test_empty_graph_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty.graphml").write_text(
        '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<graph edgedefault="directed"></graph></graphml>'
    )
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "e"\n[city]\nsource = "graphml"\npath = "empty.graphml"\n')
    result = runner.invoke(app, ["validate", str(scenario)])
    assert result.exit_code == 2, result.output
    assert "empty.graphml" in result.output
