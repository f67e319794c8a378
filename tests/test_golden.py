"""Golden rollout: fixed-seed days replayed bit for bit against a committed file.

The file `golden/rollouts.json` holds the per-step KPIs (every scalar of `info`) of one
fixed-seed day of every baseline (the clairvoyant reference and the paced ones included)
on ``tiny`` and ``downtown``, and of a short trained policy (teacher + PPO on a 16-step
``tiny``, trained here) on both, with a digest of each day's observations and per-node
costs, and a digest of the trained weights. It guards the dynamics and training: a change
that moves any of them must regenerate the file on purpose, in the same commit, with the
reason in the message::

    .venv/bin/python tests/test_golden.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

GOLDEN = Path(__file__).parent / "golden" / "rollouts.json"
SCENARIOS = ("tiny", "downtown")
SEED = 7


def _play(env: Any, policy: Any) -> dict[str, Any]:
    """One day: per-step scalars (column-wise) and a digest of the arrays."""
    env.policy_flop_per_decision = float(policy.flops_per_decision)
    obs, _ = env.reset(seed=SEED)
    policy.reset(SEED)
    digest = hashlib.sha256()
    columns: dict[str, list[float]] = {}
    while True:
        for key in ("nodes", "globals"):
            digest.update(np.ascontiguousarray(obs[key]).tobytes())
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        digest.update(np.asarray(info["node_cost"], dtype=np.float64).tobytes())
        for key, value in info.items():
            if key != "node_cost":
                columns.setdefault(key, []).append(value)
        if terminated or truncated:
            break
    return {"digest": digest.hexdigest(), "steps": columns}


def _baseline_runs() -> dict[str, Any]:
    from agents.policies.baselines import BASELINES, make_baseline
    from simcity.env import CityEnv

    runs = {}
    for scenario in SCENARIOS:
        env = CityEnv(scenario)
        for name in BASELINES:
            runs[f"{scenario}/{name}"] = _play(env, make_baseline(name, env, seed=SEED))
    return runs


def _trained_runs(tmp: Path) -> dict[str, Any]:
    import torch

    from agents.policies.attention import AttentionConfig
    from agents.policies.checkpoint import TrainedPolicy
    from agents.training.config import TeacherConfig
    from agents.training.train import TrainConfig, train
    from simcity.config.scenario import load_scenario
    from simcity.env import CityEnv

    torch.set_num_threads(1)
    scenario = load_scenario("tiny")
    short = scenario.model_copy(update={"time": scenario.time.model_copy(update={"num_steps": 16})})
    config = TrainConfig(
        total_steps=192,
        num_envs=2,
        num_steps=24,
        update_epochs=2,
        num_minibatches=2,
        seed=5,
        model=AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4),
        teacher=TeacherConfig(days=2, dagger_rounds=1, dagger_days=1, epochs=2, critic_updates=1),
    )
    result = train(short, config, tmp)
    state = torch.load(result.checkpoint_path, weights_only=True)["state_dict"]
    weights = hashlib.sha256()
    for key in sorted(state):
        weights.update(key.encode())
        weights.update(state[key].numpy().tobytes())
    runs: dict[str, Any] = {"trained/weights": weights.hexdigest()}
    for scenario_name in SCENARIOS:
        env = CityEnv(scenario_name)
        policy = TrainedPolicy.from_checkpoint(result.checkpoint_path, env)
        runs[f"{scenario_name}/trained"] = _play(env, policy)
    return runs


@cache
def _baselines_now() -> dict[str, Any]:
    return _baseline_runs()


def _golden() -> dict[str, Any]:
    with GOLDEN.open() as f:
        return json.load(f)


def _assert_same(key: str, now: Any, then: Any) -> None:
    if isinstance(then, str):
        assert now == then, f"{key} changed"
        return
    assert now["steps"].keys() == then["steps"].keys(), f"{key}: other info keys"
    for column, values in then["steps"].items():
        got = now["steps"][column]
        diff = [i for i, (a, b) in enumerate(zip(got, values, strict=True)) if a != b]
        assert not diff, f"{key}: {column} differs first at step {diff[0]}: {got[diff[0]]!r}"
    assert now["digest"] == then["digest"], f"{key}: observations or node costs changed"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_baseline_days_replay_bit_for_bit(scenario: str) -> None:
    golden, now = _golden(), _baselines_now()
    from agents.policies.baselines import BASELINES

    keys = [k for k in golden if k.startswith(f"{scenario}/") and not k.endswith("/trained")]
    assert sorted(keys) == sorted(f"{scenario}/{name}" for name in BASELINES)
    for key in keys:
        _assert_same(key, now[key], golden[key])


def test_short_training_and_its_days_replay_bit_for_bit(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    golden, now = _golden(), _trained_runs(tmp_path)
    for key, value in now.items():
        _assert_same(key, value, golden[key])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = {**_baseline_runs(), **_trained_runs(Path(tmp))}
    partial = GOLDEN.with_suffix(".tmp")
    partial.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    partial.replace(GOLDEN)
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size:,} bytes, {len(data)} entries)")
