"""The command line: run, validate, scenarios; user errors exit 2 with one clear line."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli.main import app

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
    args = ["run", "tiny", "--policy", "uniform", "--episodes", "2", "--seed", "5"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "peak load" in result.output and "detection rate" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [5, 6] and len(summary["hourly_last_episode"]) == 24
    assert {"damage", "detection_rate", "compute_kgco2", "reward"} <= set(summary["kpis"])
    episodes = json.loads((out / "episodes.json").read_text())
    assert [e["seed"] for e in episodes] == [5, 6]
    mean = sum(e["damage"] for e in episodes) / 2
    assert summary["kpis"]["damage"]["mean"] == mean
    lines = (out / "steps.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 96 and lines[0].startswith("episode,seed,step,time_min")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_run_is_reproducible(tmp_path: Path) -> None:
    for name in ("a", "b"):
        args = ["run", "tiny", "--policy", "random", "--seed", "3", "--out", str(tmp_path / name)]
        assert runner.invoke(app, [*args, "--quiet"]).exit_code == 0
    first, second = ((tmp_path / n / "steps.csv").read_bytes() for n in ("a", "b"))
    assert first == second


def test_unknown_policy_exits_2() -> None:
    result = runner.invoke(app, ["run", "tiny", "--policy", "psychic", "--quiet"])
    assert result.exit_code == 2
    assert "psychic" in result.output


def test_run_into_a_file_is_an_error(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    result = runner.invoke(app, ["run", "tiny", "--out", str(target), "--quiet"])
    assert result.exit_code == 2
    assert target.read_text() == "keep me"


BAD_SCENARIOS = {
    "wrong type": ('rows = "two"', "city.rows"),
    "unknown key": ("rows = 2\nlanes_total = 4", "city.lanes_total"),
    "negative capacity": ("rows = 2\n[city.roads]\nlane_capacity_veh_h = -900", "lane_capacity"),
    "unknown device": ('rows = 2\n[compute]\ndevice = "tpu9000"', "tpu9000"),
    "negative budget": ("rows = 2\n[monitoring]\nbudget_units = -3", "monitoring.budget_units"),
    "infinite population": ("rows = 2\npopulation = inf", "city.population"),
    "NaN price": ("rows = 2\n[compute]\nprice_per_kwh = nan", "compute.price_per_kwh"),
    "missing file": ('rows = 2\n[carbon]\nsource = "trace"\npath = "no.csv"', "carbon.path"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_malformed_scenario_exits_2_naming_file_and_field(tmp_path: Path, case: str) -> None:
    body, field = BAD_SCENARIOS[case]
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "x"\n[city]\nsource = "grid"\ncols = 2\norigin_lon = 0\norigin_lat = 0\n'
        + body
        + "\n"
    )
    for command in ("validate", "run"):
        result = runner.invoke(app, [command, str(path)])
        assert result.exit_code == 2, result.output
        assert "bad.toml" in result.output and field in result.output
        assert "Traceback" not in result.output


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


def test_error_text_in_brackets_is_printed_not_parsed_as_markup(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[time]\ndt_min = "[bold]15"\n')
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "[bold]15" in result.output


def test_run_prints_compute_share_and_unused_units_and_writes_emissions(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "tiny", "--policy", "random", "--episodes", "2", "--seed", "1"]
    result = runner.invoke(app, [*args, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    with (out / "steps.csv").open(newline="") as f:
        steps = list(csv.DictReader(f))

    def total(key: str) -> float:
        return sum(float(step[key]) for step in steps)

    share = (total("cost_energy") + total("cost_carbon")) / total("cost_total")
    assert 0 < share < 1
    assert f"compute's share of the day's cost: {100 * share:.2f}%" in result.output
    # Units left unused by hour: the budget (20) less the mean units used in that hour.
    table = result.output.split("Units left unused by hour")[1]
    printed = {
        int(m[1]): (float(m[2]), float(m[3]))
        for m in re.finditer(r"│\s*(\d\d):00\s*│\s*([\d.]+)\s*│\s*([\d.]+)\s*│", table)
    }
    assert sorted(printed) == list(range(24))
    for hour, (used, unused) in printed.items():
        in_hour = [float(s["units_used"]) for s in steps if int(float(s["hour_local"])) == hour]
        assert len(in_hour) == 2 * 4
        mean = sum(in_hour) / len(in_hour)
        assert used == pytest.approx(mean, abs=0.005)
        assert unused == pytest.approx(20.0 - mean, abs=0.005)
    assert 0 < max(unused for _, unused in printed.values()) < 20  # random leaves some
    # emissions.csv: one CodeCarbon row per episode, the episode's compute bill.
    with (out / "emissions.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames is not None and reader.fieldnames[:5] == [
        "timestamp",
        "project_name",
        "run_id",
        "duration",
        "emissions",
    ]
    episodes = json.loads((out / "episodes.json").read_text())
    assert len(rows) == len(episodes) == 2
    for row, episode in zip(rows, episodes, strict=True):
        assert float(row["emissions"]) == episode["compute_kgco2"]
        assert float(row["energy_consumed"]) == episode["compute_kwh"]
        assert float(row["duration"]) == 96 * 15 * 60
        assert row["timestamp"] == "2022-07-13T00:00:00" and row["cpu_energy"] == ""
    assert rows[0]["run_id"] != rows[1]["run_id"]


def test_train_passes_carbon_weights_and_refuses_bad_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agents.training.train

    seen = []

    def fake_train(scenario, config, out, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(agents.training.train, "train", fake_train)
    args = ["train", "tiny", "--out", str(tmp_path / "a"), "--carbon-weights", "0,20,80"]
    runner.invoke(app, args)
    assert seen and seen[0].carbon_weights == (0.0, 20.0, 80.0)
    bad = runner.invoke(
        app, ["train", "tiny", "--out", str(tmp_path / "b"), "--carbon-weights", "1,x"]
    )
    assert bad.exit_code == 2 and "--carbon-weights" in bad.output
