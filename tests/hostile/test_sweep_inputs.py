"""Hostile sweep files and `simcity pareto` arguments: refused in one line before any run
(the grid counted, never expanded, when it is too big; every axis value tried on the
scenario first), and a per-run timeout that kills and retries like a dead worker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hostile_outputs import refused, runner

import agents.green.pareto
import agents.sweeps.run
from agents.cli.main import app
from agents.sweeps.backends import Outcome
from agents.sweeps.run import run_sweep
from agents.sweeps.sweep import MAX_RUNS, RunSpec, Sweep, expand, grid_size, load_sweep

BASE = {"scenarios": '["tiny"]', "policies": '["risk"]', "seeds": "[0]"}
TEN_AXES = "[grid]\n" + "\n".join(
    f'"reward.carbon_weight{k}" = {list(range(10))}' for k in range(10)
)

# (id, lines replacing or adding to BASE, what the error says)
BAD_SWEEPS = [
    ("10^10 runs", TEN_AXES, f"at most {MAX_RUNS:,} runs"),
    (
        "2 million runs",
        'seeds = { first = 0, count = 1000000 }\npolicies = ["risk", "uniform"]',
        "at most 1,000,000 runs",
    ),
    ("10^7 seeds", "seeds = { first = 0, count = 10000000 }", "count"),
    ("seeds past 2^63", "seeds = [9223372036854775808]", "seeds"),
    ("seed range past 2^63", "seeds = { first = 9223372036854775806, count = 3 }", "seeds"),
    ("seed a float", "seeds = [0.5]", "seeds"),
    ("seed text", 'seeds = ["0"]', "seeds"),
    ("timeout 0", "timeout_s = 0", "timeout_s"),
    ("timeout negative", "timeout_s = -1", "timeout_s"),
    ("timeout nan", "timeout_s = nan", "timeout_s"),
    ("timeout inf", "timeout_s = inf", "timeout_s"),
    ("timeout 1e308", "timeout_s = 1e308", "timeout_s"),
    ("timeout text", 'timeout_s = "soon"', "timeout_s"),
    ("timeout a table", "timeout_s = { s = 1 }", "timeout_s"),
    ("episodes 0", "episodes = 0", "episodes"),
    ("episodes 10^6", "episodes = 1000000", "episodes"),
    ("no scenarios", "scenarios = []", "scenarios"),
    ("no policies", "policies = []", "policies"),
    ("scenario a number", "scenarios = [1]", "scenarios"),
    ("policy unknown", 'policies = ["psychic"]', "psychic"),
    ("name too long", f'name = "{"n" * 81}"', "name"),
    ("unknown key", "workers = 4", "unknown key"),
    ("grid axis empty", '[grid]\n"time.num_steps" = []', "no values"),
    ("grid key unknown", '[grid]\n"time.bogus" = [1]', "grid.time.bogus"),
    ("grid value 1e308 steps", '[grid]\n"time.num_steps" = [1e308]', "grid.time.num_steps"),
    ("grid value nan", '[grid]\n"reward.carbon_weight" = [nan]', "grid.reward.carbon_weight"),
    ("grid value text", '[grid]\n"reward.carbon_weight" = ["lots"]', "grid.reward.carbon_weight"),
    ("grid value table", '[grid]\n"reward.carbon_weight" = [{a = 1}]', "grid.reward.carbon_weight"),
    ("grid not a section", '[grid]\n"reward.carbon_weight.x" = [1]', "grid.reward.carbon_weight.x"),
    ("not TOML", "scenarios = [", "not valid TOML"),
    ("deep TOML", "x = " + "[" * 5000, "TOML"),
]


def write_sweep(folder: Path, change: str) -> Path:
    """BASE with ``change``: its top-level lines replace BASE's keys, its [grid] follows."""
    top, grid_mark, grid = change.partition("[grid]")
    lines = [line for line in top.splitlines() if line.strip()]
    keys = {line.split("=", 1)[0].strip() for line in lines}
    body = [f"{k} = {v}" for k, v in BASE.items() if k not in keys] + lines
    path = folder / "sweep.toml"
    path.write_text("\n".join(body) + "\n" + grid_mark + grid + "\n")
    return path


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any run that starts fails the test: refusals come before the first one."""

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run started")

    monkeypatch.setattr(agents.sweeps.run, "run_sweep", never)
    monkeypatch.setattr(agents.green.pareto, "run_sweep", never)


@pytest.mark.parametrize(
    ("change", "says"), [c[1:] for c in BAD_SWEEPS], ids=[c[0] for c in BAD_SWEEPS]
)
def test_a_bad_sweep_file_is_refused_before_any_run(
    change: str, says: str, tmp_path: Path, no_runs: None
) -> None:
    path = write_sweep(tmp_path, change)
    refused(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"], contains=says)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["folder", "fifo", "device", "binary", "utf16", "huge"])
def test_a_sweep_file_that_is_not_text_is_refused(kind: str, tmp_path: Path, no_runs: None) -> None:
    path: Path | str = tmp_path / "sweep.toml"
    if kind == "folder":
        tmp_path.joinpath("sweep.toml").mkdir()
    elif kind == "fifo":
        os.mkfifo(tmp_path / "sweep.toml")
    elif kind == "device":
        path = "/dev/zero"
    elif kind == "binary":
        (tmp_path / "sweep.toml").write_bytes(b"\x00\xff\xfe" * 100)
    elif kind == "utf16":
        (tmp_path / "sweep.toml").write_bytes('scenarios = ["tiny"]'.encode("utf-16"))
    else:
        with (tmp_path / "sweep.toml").open("wb") as f:
            f.truncate(64 * 1024 * 1024)
    refused(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"])


def test_a_huge_grid_is_counted_not_expanded() -> None:
    axes = tuple((f"reward.carbon_weight{k}", tuple(range(10))) for k in range(10))
    sweep = Sweep(("tiny",), ("risk",), (0,), grid=axes)
    assert grid_size(sweep) == 10**10
    started = time.process_time()
    with pytest.raises(ValueError, match="10,000,000,000 runs"):
        expand(sweep)
    assert time.process_time() - started < 5.0  # counted: expanding would never finish


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "1e308", "soon"])
def test_a_bad_timeout_option_is_refused(value: str, tmp_path: Path, no_runs: None) -> None:
    path = write_sweep(tmp_path, "")
    args = ["sweep", str(path), "--timeout-s", value, "--out", str(tmp_path / "out")]
    refused(args, contains="timeout", usage=True)


def test_the_timeout_comes_from_the_file_unless_the_option_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float | None] = []

    def capture(specs: list[RunSpec], **kwargs: object) -> list[object]:
        seen.append(kwargs["timeout_s"])  # type: ignore[arg-type]
        return []

    monkeypatch.setattr(agents.sweeps.run, "run_sweep", capture)
    path = write_sweep(tmp_path, "timeout_s = 30")
    assert load_sweep(path).timeout_s == 30.0
    for extra, expected in (([], 30.0), (["--timeout-s", "2.5"], 2.5)):
        result = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "o"), *extra])
        assert result.exit_code == 0, result.output
        assert seen[-1] == expected


# --- the timeout itself ------------------------------------------------------------------


def sleepy(spec: RunSpec, number: int) -> Outcome:
    """Run 0 ends at once; run 1 hangs on every attempt; run 2 hangs on its first only."""
    if spec.run_id == 1 or (spec.run_id == 2 and number == 1):
        time.sleep(600)
    kpis = dict.fromkeys(("detection_rate", "mean_detection_delay_min", "compute_kgco2"), 0.0)
    return Outcome({**kpis, "money": 0.0, "damage": float(spec.run_id)}, "", ())


def test_a_run_past_its_timeout_is_killed_retried_and_recorded() -> None:
    specs = expand(Sweep(("tiny",), ("uniform",), (0, 1, 2)))
    started = time.monotonic()
    results = run_sweep(specs, "process", workers=2, retries=1, attempt=sleepy, timeout_s=1.0)
    assert time.monotonic() - started < 60  # the hung attempts were killed, not waited for
    assert [r.status for r in results] == ["ok", "timeout", "ok"]
    assert results[1].attempts == 2 and results[1].kpis == {}
    assert results[1].failures == (
        "attempt 1: timed out after 1 s",
        "attempt 2: timed out after 1 s",
    )
    assert results[2].attempts == 2 and results[2].kpis["damage"] == 2.0
    assert results[0].attempts == 1 and results[0].failures == ()


def test_a_timed_out_sweep_exits_1_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    monkeypatch.setattr(
        agents.sweeps.run, "run_sweep", functools.partial(run_sweep, attempt=sleepy)
    )
    path = write_sweep(tmp_path, "seeds = [0, 1]")
    out = tmp_path / "out"
    args = ["sweep", str(path), "--timeout-s", "1", "--retries", "0", "--out", str(out)]
    result = runner.invoke(app, [*args, "--workers", "2", "--quiet"])
    assert result.exit_code == 1, result.output
    assert "run 1 timeout" in " ".join(result.output.split())
    assert (out / "results.csv").read_text().count(",timeout,") == 1


# --- pareto arguments --------------------------------------------------------------------

BAD_PARETO = [
    ("budget 1e308", ["--budgets", "1e308"], "--budgets"),
    ("budget 1e400", ["--budgets", "1e400"], "--budgets"),
    ("budget nan", ["--budgets", "nan"], "--budgets"),
    ("budget inf", ["--budgets", "inf"], "--budgets"),
    ("budget negative", ["--budgets", "-1"], "--budgets"),
    ("budget empty item", ["--budgets", "1,,2"], "--budgets"),
    ("budget empty", ["--budgets", ""], "--budgets"),
    ("budget text", ["--budgets", "ten"], "--budgets"),
    ("budget repeated", ["--budgets", "1,1"], "--budgets"),
    (
        "budget x weight beyond range",
        ["--budgets", "1e30", "--carbon-weights", "1e308"],
        "--budgets",
    ),
    ("weight negative", ["--carbon-weights", "-1"], "--carbon-weights"),
    ("weight nan", ["--carbon-weights", "nan"], "--carbon-weights"),
    ("weight complex", ["--carbon-weights", "1+2j"], "--carbon-weights"),
    ("set an axis", ["--set", "monitoring.budget_units=5"], "axis"),
    ("set unknown", ["--set", "bogus.key=1"], "bogus.key"),
    ("set out of range", ["--set", "time.num_steps=-1"], "time.num_steps"),
    ("set no equals", ["--set", "noequals"], "KEY=VALUE"),
    ("no checkpoint", ["--checkpoint", "nowhere/checkpoint.pt"], "checkpoint"),
    ("no scenario", [], "atlantis"),
]


@pytest.mark.parametrize(
    ("argv", "says"), [c[1:] for c in BAD_PARETO], ids=[c[0] for c in BAD_PARETO]
)
def test_bad_pareto_arguments_are_refused_before_any_run(
    argv: list[str], says: str, tmp_path: Path, no_runs: None
) -> None:
    scenario = "atlantis" if says == "atlantis" else "tiny"
    args = ["pareto", scenario, *argv, "--seeds", "1", "--out", str(tmp_path / "out"), "--quiet"]
    refused(args, contains=says)
    assert not (tmp_path / "out").exists()


def test_pareto_seeds_0_is_a_usage_error(tmp_path: Path) -> None:
    refused(["pareto", "tiny", "--seeds", "0", "--out", str(tmp_path / "o")], usage=True)
