"""Pareto fronts: the filter on hand-made points, and `simcity pareto` end to end on tiny."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agents.cli.main import app
from agents.green.pareto import (
    OBJECTIVES,
    PARETO_RTOL,
    objective_tolerances,
    pareto_front,
    pareto_mask,
    parse_numbers,
)
from simcity.errors import SimcityError

runner = CliRunner()

# Two hours of the tiny town from 08:00 with common incidents: a few hundredths of a
# second a run.
SHORT_DAY = [
    "--set",
    "time.num_steps=8",
    "--set",
    "time.start_hour=8",
    "--set",
    "incidents.overload_per_mw_h=2",
]


def test_the_filter_keeps_exactly_the_hand_made_front() -> None:
    points = [
        {"name": "a", "cost": 1.0, "co2": 5.0, "money": 9.0},  # best cost
        {"name": "b", "cost": 5.0, "co2": 1.0, "money": 9.0},  # best co2
        {"name": "c", "cost": 9.0, "co2": 9.0, "money": 1.0},  # best money
        {"name": "d", "cost": 2.0, "co2": 6.0, "money": 9.0},  # dominated by a
        {"name": "e", "cost": 1.0, "co2": 5.0, "money": 9.0},  # duplicate of a: dropped
        {"name": "f", "cost": 1.0, "co2": 5.0, "money": 9.5},  # tied with a on two, worse
        {"name": "g", "cost": 3.0, "co2": 3.0, "money": 3.0},  # a trade-off: kept
        {"name": "h", "cost": 3.0, "co2": 3.0, "money": 4.0},  # tied with g but worse money
        {"name": "i", "cost": 0.5, "co2": 9.0, "money": 9.0},  # tied worst co2, best cost
        {"name": "j", "cost": 9.0, "co2": 9.0, "money": 9.0},  # dominated by everything
    ]
    front = pareto_front(points, ["cost", "co2", "money"])
    assert [p["name"] for p in front] == ["a", "b", "c", "g", "i"]


def test_the_filter_agrees_with_a_loop_on_random_points_with_ties() -> None:
    values = np.random.default_rng(0).integers(0, 4, size=(60, 3)).astype(float)
    keep = pareto_mask(values)
    for i, row in enumerate(values):
        dominated = any((other <= row).all() and (other < row).any() for other in values)
        first = not any((values[j] == row).all() for j in range(i))
        assert keep[i] == (not dominated and first)
    assert keep.any()


def test_float_noise_is_a_tie_not_a_trade_off() -> None:
    # The case: a point worse on service and money stays on an exact front
    # because its kgCO2 is lower by 5e-7 (a policy leaving 1e-7 of its budget unused).
    trained = {"name": "trained", "service_cost": 100.0, "compute_kgco2": 3.2, "money": 500.0}
    noise = {"name": "risk", "service_cost": 140.0, "compute_kgco2": 3.2 - 5e-7, "money": 560.0}
    clean = {"name": "uniform", "service_cost": 300.0, "compute_kgco2": 1.0, "money": 900.0}
    points = [trained, noise, clean]
    exact = pareto_front(points, OBJECTIVES, rtol=0.0)
    assert [p["name"] for p in exact] == ["trained", "risk", "uniform"]
    assert [p["name"] for p in pareto_front(points)] == ["trained", "uniform"]
    values = np.array([[p[k] for k in OBJECTIVES] for p in points])
    assert objective_tolerances(values).tolist() == pytest.approx([3e-4, 3.2e-6, 9e-4])
    # a real difference, above the tolerance, is still a trade-off
    noise["compute_kgco2"] = 3.2 - 1e-3
    assert [p["name"] for p in pareto_front(points)] == ["trained", "risk", "uniform"]


def test_a_tie_that_is_dominated_does_not_hide_the_next_tie() -> None:
    # b ties a within the tolerance; c beats a by more than it, but not b: b is kept
    values = np.array([[1.0, 1.0], [1.0, 0.95], [0.85, 1.08]])
    assert pareto_mask(values, tolerance=0.1).tolist() == [False, True, True]
    with pytest.raises(ValueError, match="tolerance"):
        pareto_mask(values, tolerance=-1.0)


def test_the_filter_refuses_nan_and_takes_nothing() -> None:
    assert pareto_front([], OBJECTIVES) == []
    with pytest.raises(ValueError, match="NaN"):
        pareto_mask(np.array([[1.0, np.nan]]))


def test_number_lists_are_checked() -> None:
    assert parse_numbers("10,20,40", "--budgets") == (10.0, 20.0, 40.0)
    for bad in ("10,x", "-1", "1,1", "nan"):
        with pytest.raises(SimcityError) as err:
            parse_numbers(bad, "--budgets")
        assert err.value.field == "--budgets"


def _checkpoint(path: Path, d_model: int) -> Path:
    from agents.policies.attention import AttentionConfig, AttentionPolicy
    from agents.policies.checkpoint import save_checkpoint

    config = AttentionConfig(d_model=d_model, num_heads=2, num_layers=1, num_neighbours=4)
    return save_checkpoint(
        path,
        model_config=config,
        state_dict=AttentionPolicy(config).state_dict(),
        optimizer_state={},
        step=0,
        update=0,
        rng_states={},
        extra={},
    )


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_pareto_command_writes_points_front_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    small = _checkpoint(tmp_path / "small" / "checkpoint.pt", 8)
    large = _checkpoint(tmp_path / "large" / "checkpoint.pt", 16)
    out = tmp_path / "front"
    args = ["pareto", "tiny", "--seeds", "2", "--budgets", "5,20", "--carbon-weights", "0,10"]
    args += ["--checkpoint", str(small), "--checkpoint", str(large), "--workers", "2"]
    result = runner.invoke(app, [*args, *SHORT_DAY, "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    points, front = _read(out / "points.csv"), _read(out / "front.csv")
    assert (out / "front.png").read_bytes().startswith(b"\x89PNG")
    # 4 baselines and 2 checkpoints, 2 weights, 2 budgets; every point from both seeds
    assert len(points) == 6 * 2 * 2
    assert {p["policy"] for p in points} == {"uniform", "risk", "traffic", "population"} | {
        "small",
        "large",
    }
    assert all(p["runs_ok"] == "2" for p in points)
    assert int(points[-1]["num_params"]) > int(
        next(p for p in points if p["policy"] == "small")["num_params"]
    )
    on_front = [p for p in points if p["pareto"] == "true"]
    assert front == on_front and front
    key = [*OBJECTIVES]
    vectors = np.array([[float(p[k]) for k in key] for p in points])
    doc = json.loads((out / "pareto.json").read_text())
    tol = np.array([doc["tolerance"][k] for k in key])
    assert doc["objectives"] == key and doc["relative_tolerance"] == PARETO_RTOL
    assert tol == pytest.approx(PARETO_RTOL * np.abs(vectors).max(axis=0))
    assert "ties within 1e-06 of each objective's largest value" in result.output
    for p in front:
        v = np.array([float(p[k]) for k in key])
        assert not ((vectors <= v + tol).all(axis=1) & (vectors < v - tol).any(axis=1)).any()
    for p in points:  # service cost is damage plus estimation cost
        assert float(p["service_cost"]) == pytest.approx(
            float(p["damage"]) + float(p["estimation_cost"])
        )


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--budgets", "10,abc"], "--budgets"),
        (["--carbon-weights", "-1"], "--carbon-weights"),
        (["--checkpoint", "no/such.pt"], "--checkpoint[0]"),
        (["--set", "time.no_such_key=3"], "time.no_such_key"),
        (["--set", "reward.carbon_weight=3"], "reward.carbon_weight"),
        (["--set", "oops"], "--set"),
    ],
)
def test_bad_input_is_one_error_and_exit_2(tmp_path: Path, extra: list[str], field: str) -> None:
    result = runner.invoke(app, ["pareto", "tiny", *extra, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and field in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_a_scenario_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["pareto", "no_such_city", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "no_such_city" in result.output
