"""Sweeps: files and their expansion, pure runs, identical results on every backend and
worker count, killed workers retried, and the `simcity sweep` command's exit codes."""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import agents.sweeps.run
from agents.cli.main import app
from agents.policies.baselines import make_baseline
from agents.sweeps.backends import Attempt, Outcome, play_attempt
from agents.sweeps.results import write_results
from agents.sweeps.run import run_sweep
from agents.sweeps.sweep import (
    RunResult,
    RunSpec,
    Sweep,
    expand,
    load_sweep,
    run_one,
)
from agents.training.evaluate import run_episode
from simcity.config.overrides import override_scenario
from simcity.config.scenario import bundled_scenarios, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError

runner = CliRunner()

# Two hours of the tiny town from 08:00 with incidents made common (about 30 a run,
# accidents among them that close lanes, so traffic re-routes), in a few hundredths of a
# second a run.
SHORT_DAY = """
[grid]
"time.num_steps" = 8
"time.start_hour" = 8
"incidents.overload_per_mw_h" = 2
"incidents.accident_per_mveh_km" = 5000
"reward.carbon_weight" = [0, 10]
"""
SMALL = f"""
name = "small_test"
scenarios = ["tiny"]
policies = ["uniform", "random"]
seeds = {{ first = 3, count = 2 }}
{SHORT_DAY}
"""


def write(folder: Path, text: str, name: str = "sweep.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def small_specs(tmp_path_factory: pytest.TempPathFactory) -> list[RunSpec]:
    return expand(load_sweep(write(tmp_path_factory.mktemp("sweep"), SMALL)))


@pytest.fixture(scope="module")
def in_process(small_specs: list[RunSpec]) -> dict[int, dict[str, float]]:
    """Every run's KPIs from `run_one` in this process: what every backend must match."""
    return {spec.run_id: run_one(spec).kpis for spec in small_specs}


def kill_first_attempt(run_ids: frozenset[int], spec: RunSpec, number: int) -> Outcome:
    """Fault injection: the first attempt of each run in ``run_ids`` SIGKILLs its worker
    after the second step of its first episode; every other attempt plays as usual."""
    if number > 1 or spec.run_id not in run_ids:
        return play_attempt(spec, number)
    steps = 0

    def on_step(info: dict[str, Any]) -> None:
        nonlocal steps
        steps += 1
        if steps == 2:
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    return play_attempt(spec, number, on_step)


def killing(*run_ids: int) -> Attempt:
    """`kill_first_attempt` for these runs, as an `Attempt` the workers can unpickle.

    Process workers import this module by its name (``test_sweep``: pytest put its folder
    on the path, and the forkserver starts with the path of this process); Ray workers do
    not have that folder, so Ray pickles this module by value.
    """
    try:
        import ray.cloudpickle
    except ImportError:
        pass
    else:
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return functools.partial(kill_first_attempt, frozenset(run_ids))


def files(results: list[RunResult], out: Path) -> tuple[bytes, bytes]:
    csv_path, json_path = write_results(out, results)
    return csv_path.read_bytes(), json_path.read_bytes()


# --- files and expansion -----------------------------------------------------------


def test_a_sweep_expands_in_order_with_paths_relative_to_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = bundled_scenarios()["tiny"].resolve()
    write(tmp_path / "sweeps" / "cities", f'base = "{tiny}"\nname = "tiny_copy"\n', "copy.toml")
    text = """
        scenarios = ["tiny", "cities/copy.toml"]
        policies = ["risk", "clairvoyant"]
        seeds = [7, 2, 9]
        episodes = 2
        [grid]
        "monitoring.budget_units" = [10, 20.5]
        time.num_steps = 8
        [grid.reward]  # the same as "reward.carbon_weight" under [grid]
        carbon_weight = [0, 1]
    """
    path = write(tmp_path / "sweeps", text)
    monkeypatch.chdir(tmp_path)  # not the sweep's folder
    sweep = load_sweep(path)
    assert sweep.name == "sweep" and sweep.base_dir == path.parent.resolve()
    specs = expand(sweep)
    assert len(specs) == 2 * 2 * 4 * 3
    assert [s.run_id for s in specs] == list(range(48))
    assert specs[0].scenario_source == "tiny"
    assert specs[-1].scenario_source == str(tmp_path / "sweeps" / "cities" / "copy.toml")
    assert [s.seed for s in specs[:4]] == [7, 2, 9, 7]  # seeds innermost, as listed
    assert [dict(s.overrides)["reward.carbon_weight"] for s in specs[:6:3]] == [0, 1]
    assert [dict(s.overrides)["monitoring.budget_units"] for s in specs[:12:6]] == [10, 20.5]
    assert {dict(s.overrides)["time.num_steps"] for s in specs} == {8}
    assert [s.policy for s in specs[:24:12]] == ["risk", "clairvoyant"]
    assert {s.episodes for s in specs} == {2}
    assert load_sweep(write(tmp_path, SMALL, "range.toml")).seeds == (3, 4)


BAD_SWEEPS = {
    "unknown top key": ('policy = ["risk"]', "policy", "unknown key"),
    "unknown grid key": (
        '[grid]\n"reward.carbon_wieght" = [1]',
        "grid.reward.carbon_wieght",
        "carbon_weight",
    ),
    "unknown section": (
        '[grid]\n"rewards.scale" = [1]',
        "grid.rewards.scale",
        "unknown scenario field",
    ),
    "value out of range": (
        '[grid]\n"reward.carbon_weight" = [1, -1]',
        "grid.reward.carbon_weight",
        "-1",
    ),
    "wrong value type": ('[grid]\n"time.num_steps" = ["many"]', "grid.time.num_steps", "many"),
    "empty axis": ('[grid]\n"time.num_steps" = []', "grid.time.num_steps", "no values"),
    "no such scenario": ('scenarios = ["atlantis"]', "scenarios[0]", "atlantis"),
    "no such policy": ('policies = ["psychic"]', "policies[0]", "psychic"),
    "bad seed range": ("seeds = { first = 0, count = 0 }", "seeds", "count"),
    "negative seed": ("seeds = [1, -2]", "seeds.1", "greater than"),
    "seed twice": ("seeds = [1, 1]", "seeds", "listed twice"),
    "not toml": ("scenarios = [", "", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BAD_SWEEPS), ids=list(BAD_SWEEPS))
def test_bad_sweep_files_name_the_file_and_the_field(tmp_path: Path, case: str) -> None:
    change, field, words = BAD_SWEEPS[case]
    base = {"scenarios": '["tiny"]', "policies": '["risk"]', "seeds": "[0]"}
    key = change.split(" ", 1)[0]
    lines = [f"{k} = {v}" for k, v in base.items() if k != key] + [change]
    path = write(tmp_path, "\n".join(sorted(lines, key=lambda line: line.startswith("["))))
    with pytest.raises(SimcityError) as err:
        expand(load_sweep(path))
    assert str(path) in str(err.value) and field in str(err.value) and words in str(err.value)


def test_overrides_are_validated_copies() -> None:
    tiny = load_scenario("tiny")
    variant = override_scenario(tiny, [("city.rows", 3), ("incidents.damage_per_min", [1, 2, 3])])
    assert (variant.city.rows, variant.incidents.damage_per_min) == (3, (1.0, 2.0, 3.0))
    assert tiny.city.rows == 4 and variant.city.cols == tiny.city.cols
    with pytest.raises(SimcityError, match=r"needs city\.source"):  # the Scenario's own check
        override_scenario(tiny, [("traffic.demand", "tntp")])
    with pytest.raises(SimcityError, match="not a section"):
        override_scenario(tiny, [("time.num_steps.days", 1)])


def test_the_bundled_example_sweep_is_valid() -> None:
    specs = expand(load_sweep("small"))
    assert len(specs) == 3 * 4 * 3 and {s.scenario for s in specs} == {"downtown"}


# --- runs --------------------------------------------------------------------------


def test_a_run_is_simcity_run_on_the_overridden_scenario(small_specs: list[RunSpec]) -> None:
    spec = RunSpec(**{**small_specs[-1].__dict__, "episodes": 2})  # random policy, seed 4
    kpis = run_one(spec).kpis
    scenario = override_scenario(load_scenario("tiny"), spec.overrides)
    env = CityEnv(scenario)
    policy = make_baseline("random", env, seed=4)
    summaries = [run_episode(env, policy, seed).summary for seed in (4, 5)]
    assert kpis == {k: float(np.mean([s[k] for s in summaries])) for k in summaries[0]}
    assert kpis["city_num_steps"] == 8 and kpis["incidents"] >= 10
    assert scenario.reward.carbon_weight == 10


def test_runs_that_share_a_warm_city_match_fresh_ones(small_specs: list[RunSpec]) -> None:
    import agents.sweeps.sweep
    from simcity.traffic.day import _DAYS

    fresh = []
    for spec in small_specs:
        agents.sweeps.sweep._CITIES.clear()
        fresh.append(run_one(spec).kpis)
    agents.sweeps.sweep._CITIES.clear()
    warm = [run_one(spec).kpis for spec in small_specs]  # one city, its traffic day memoised
    assert warm == fresh
    (city,) = agents.sweeps.sweep._CITIES.values()
    assert any(day._cuts for day in _DAYS[city].values())  # re-routing solves were reused


def test_a_checkpoint_policy_bills_its_flops(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from agents.policies.attention import AttentionConfig, AttentionPolicy
    from agents.policies.checkpoint import TrainedPolicy, save_checkpoint

    config = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)
    save_checkpoint(
        tmp_path / "ppo" / "checkpoint.pt",
        model_config=config,
        state_dict=AttentionPolicy(config).state_dict(),
        optimizer_state={},
        step=0,
        update=0,
        rng_states={},
        extra={},
    )
    text = SMALL.replace('["uniform", "random"]', '["ppo/checkpoint.pt"]')
    spec = expand(load_sweep(write(tmp_path, text)))[0]
    kpis = run_one(spec).kpis
    env = CityEnv(override_scenario(load_scenario("tiny"), spec.overrides))
    trained = TrainedPolicy.from_checkpoint(tmp_path / "ppo" / "checkpoint.pt", env)
    assert kpis["compute_policy_kwh"] > 0
    assert kpis["damage"] == run_episode(env, trained, spec.seed).summary["damage"]


# --- backends ----------------------------------------------------------------------


def test_backends_and_worker_counts_give_identical_results(
    small_specs: list[RunSpec], in_process: dict[int, dict[str, float]], tmp_path: Path
) -> None:
    one = run_sweep(small_specs, "process", workers=1)
    two = run_sweep(small_specs, "process", workers=2)
    on_ray = run_sweep(small_specs, "ray", workers=2)  # a local 2-CPU Ray, started here
    for results in (one, two, on_ray):
        assert [r.spec.run_id for r in results] == list(range(len(small_specs)))
        assert all(r.status == "ok" and r.attempts == 1 for r in results)
        assert {r.spec.run_id: r.kpis for r in results} == in_process
    expected = files(one, tmp_path / "one")
    assert files(two, tmp_path / "two") == expected
    assert files(on_ray, tmp_path / "ray") == expected
    rows = list(csv.DictReader(io.StringIO(expected[0].decode())))
    assert [row["run"] for row in rows] == [str(k) for k in range(len(small_specs))]
    assert [(row["reward.carbon_weight"], row["seed"]) for row in rows[:3]] == [
        ("0", "3"),
        ("0", "4"),
        ("10", "3"),
    ]
    assert float(rows[0]["damage"]) == in_process[0]["damage"]  # exact round trip
    assert json.loads(expected[1])[0]["kpis"]["damage"] == in_process[0]["damage"]


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_a_killed_worker_costs_only_its_own_run(
    backend: str, small_specs: list[RunSpec], in_process: dict[int, dict[str, float]]
) -> None:
    seen: list[int] = []
    results = run_sweep(
        small_specs,
        backend,  # type: ignore[arg-type]
        workers=2,
        attempt=killing(2, 5),
        on_result=lambda r: seen.append(r.spec.run_id),
    )
    assert sorted(seen) == [r.spec.run_id for r in results] == list(range(len(small_specs)))
    assert all(r.status == "ok" for r in results)
    assert {r.spec.run_id: r.kpis for r in results} == in_process
    assert {r.spec.run_id: r.attempts for r in results if r.attempts > 1} == {2: 2, 5: 2}
    for run_id in (2, 5):
        (failure,) = results[run_id].failures
        assert failure.startswith("attempt 1: worker died")
        if backend == "process":
            assert "SIGKILL" in failure


def test_a_run_whose_worker_always_dies_fails_alone(
    small_specs: list[RunSpec], tmp_path: Path
) -> None:
    results = run_sweep(small_specs, "process", workers=2, retries=0, attempt=killing(1))
    assert [r.status for r in results] == ["ok", "failed", "ok", "ok", "ok", "ok", "ok", "ok"]
    assert results[1].attempts == 1 and results[1].kpis == {}
    rows = list(csv.DictReader(io.StringIO(files(results, tmp_path)[0].decode())))
    assert rows[1]["damage"] == "" and rows[1]["status"] == "failed"


def test_a_run_that_raises_is_an_error_and_not_retried(small_specs: list[RunSpec]) -> None:
    broken = RunSpec(**{**small_specs[0].__dict__, "policy_source": "psychic"})
    (result,) = run_sweep([broken], "process", workers=1, retries=2)
    assert (result.status, result.attempts) == ("error", 1)
    assert "psychic" in result.failures[0]


# --- the command -------------------------------------------------------------------


def test_sweep_command_writes_results_and_a_summary(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL)
    out = tmp_path / "out"
    result = runner.invoke(app, ["sweep", str(path), "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "sweep small_test: 8 runs on process" in result.output
    assert "carbon_weight" in result.output and "random" in result.output  # what varies
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 8 and {row["status"] for row in rows} == {"ok"}
    meta = json.loads((out / "sweep.json").read_text())
    assert (meta["runs"], meta["ok"], meta["backend"]) == (8, 8, "process")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_sweep_command_exits_1_when_a_run_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command plays its runs through `run_sweep`: the same one, run 3's worker killed.
    killed = functools.partial(run_sweep, attempt=killing(3))
    monkeypatch.setattr(agents.sweeps.run, "run_sweep", killed)
    out = tmp_path / "out"
    args = ["sweep", str(write(tmp_path, SMALL)), "--retries", "0", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "run 3 failed" in result.output
    statuses = [row["status"] for row in csv.DictReader((out / "results.csv").open())]
    assert statuses.count("failed") == 1 and statuses[3] == "failed"


@pytest.mark.parametrize(
    "case", ["bad grid key", "address without ray", "missing file", "negative workers"]
)
def test_sweep_command_user_errors_exit_2(tmp_path: Path, case: str) -> None:
    good = str(write(tmp_path, SMALL))
    args = {
        "bad grid key": [str(write(tmp_path, SMALL.replace("time.start_hour", "time.start")))],
        "address without ray": [good, "--address", "ray://head:10001"],
        "missing file": [str(tmp_path / "nothing.toml")],
        "negative workers": [good, "--workers", "0"],
    }[case]
    result = runner.invoke(app, ["sweep", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    if case == "bad grid key":
        assert "sweep.toml" in result.output and "grid.time.start" in result.output
    assert not (tmp_path / "out").exists()


def test_ray_backend_without_ray_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    args = ["sweep", str(write(tmp_path, SMALL)), "--backend", "ray"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "Ray is not installed" in result.output and "pip install ray" in result.output


def test_the_sweep_is_a_python_api() -> None:
    axes = (("time.num_steps", (4, 8)), ("city.rows", (3, 4)))
    specs = expand(Sweep(("tiny",), ("uniform",), (0,), grid=axes))
    results = run_sweep(specs, "process", workers=1)  # one worker keeps both cities
    assert [r.kpis["city_num_steps"] for r in results] == [4, 4, 8, 8]
    for spec, result in zip(specs, results, strict=True):
        env = CityEnv(override_scenario(load_scenario("tiny"), spec.overrides))
        assert result.kpis == run_episode(env, make_baseline("uniform", env, seed=0), 0).summary
