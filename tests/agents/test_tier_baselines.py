"""Baselines on an env with analytics tiers: valid actions, every node weight on tier 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.policies.baselines import BASELINES, make_baseline
from agents.policies.tiers import on_first_tier
from simcity.config.monitoring import AnalyticsTier
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv

TIERS = (
    AnalyticsTier(name="detector", flop_per_unit_min=1.15e15),
    AnalyticsTier(name="vlm", flop_per_unit_min=1.44e16, hazard_gain=3.0),
)


@pytest.fixture(scope="module")
def env() -> CityEnv:
    scenario = load_scenario("tiny")
    compute = scenario.compute.model_copy(update={"tiers": TIERS})
    return CityEnv(scenario.model_copy(update={"compute": compute}))


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_give_valid_actions_on_the_first_tier(env: CityEnv, name: str) -> None:
    policy = make_baseline(name, env, seed=0)
    obs, _ = env.reset(seed=0)
    policy.reset(0)
    for _ in range(2):
        action = policy.act(obs)
        assert action.shape == env.action_space.shape
        assert np.isfinite(action).all() and (action >= 0).all()
        assert (action[1:-1:2] == 0).all()  # nothing on the VLM tier
        assert action[:-1].sum() > 0
        obs, *_ = env.step(action)


def test_first_tier_rule_matches_the_plain_allocation(env: CityEnv) -> None:
    """The same node weights give each node the same capacity, all of it detector units."""
    weights = np.random.default_rng(0).random(17)
    units = env.allocation(on_first_tier(weights, 2))
    np.testing.assert_allclose(units[:, 0], CityEnv("tiny").allocation(weights), rtol=1e-15)
    assert (units[:, 1] == 0).all()


def test_downtown_vlm_baseline_steps() -> None:
    env = CityEnv("downtown_vlm")
    policy = make_baseline("posterior", env)
    obs, _ = env.reset(seed=0)
    action = policy.act(obs)
    assert action.shape == (env.city.num_nodes * 2 + 1,)
    env.step(action)


def test_a_trained_policy_refuses_a_tiered_scenario_in_one_line(tmp_path: Path) -> None:
    """The attention policy allocates one tier: training or playing it on `downtown_vlm`
    is a clear error (exit 2 from the CLI), not a shape error deep in the env."""
    from typer.testing import CliRunner

    from agents.cli.main import app

    args = ["train", "downtown_vlm", "--steps", "96", "--teacher-days", "0"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2 and "compute.tiers" in result.output
