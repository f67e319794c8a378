"""Training over carbon weights: drawn per episode from the seeds, shown in the observation;
a checkpoint told the weight by `simcity pareto`."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.cli.main import app
from agents.training.config import TrainConfig
from agents.training.rollout import episode_carbon_weight, make_envs
from simcity.config.overrides import override_scenario
from simcity.config.scenario import load_scenario
from simcity.env import GLOBAL_FEATURES
from simcity.errors import SimcityError

CARBON = GLOBAL_FEATURES.index("carbon_price_per_kg")


def test_the_weight_is_drawn_by_the_seeds_from_the_list() -> None:
    weights = (0.0, 1.0, 10.0)
    drawn = [episode_carbon_weight(3, 0, episode, weights) for episode in range(30)]
    assert drawn == [episode_carbon_weight(3, 0, episode, weights) for episode in range(30)]
    assert set(drawn) == set(weights)
    with pytest.raises(SimcityError) as err:
        TrainConfig(carbon_weights=(1.0, -2.0))
    assert err.value.field == "train.carbon_weights"


def test_each_episode_shows_its_weight_and_twins_share_it() -> None:
    scenario = override_scenario(load_scenario("tiny"), [("time.num_steps", 4)])
    config = TrainConfig(num_envs=4, num_steps=4, num_minibatches=1, carbon_weights=(0.0, 10.0))
    envs = make_envs(scenario, config)
    per_kg = scenario.compute.carbon_price_per_t / 1000.0
    seen = set()
    for episode in range(8):
        obs = envs.reset(episode * 4 * 4, 0)
        carbon = obs["globals"][:, CARBON]
        assert carbon[0] == carbon[2] and carbon[1] == carbon[3]  # twins
        for k, value in enumerate(carbon):
            env = envs.vector.envs[k]
            assert value == pytest.approx(per_kg * env.unwrapped.scenario.reward.carbon_weight)
            seen.add(round(float(value), 6))
    assert seen == {0.0, round(10.0 * per_kg, 6)}


def test_default_training_keeps_the_scenarios_weight() -> None:
    scenario = override_scenario(load_scenario("tiny"), [("time.num_steps", 4)])
    envs = make_envs(scenario, TrainConfig(num_envs=2, num_steps=4, num_minibatches=1))
    obs = envs.reset(0, 0)
    per_kg = scenario.compute.carbon_price_per_t / 1000.0 * scenario.reward.carbon_weight
    assert obs["globals"][:, CARBON] == pytest.approx([per_kg, per_kg])


def test_pareto_runs_a_checkpoint_at_two_weights_and_its_carbon_moves(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from agents.policies.attention import AttentionConfig, AttentionPolicy
    from agents.policies.checkpoint import save_checkpoint

    config = AttentionConfig(d_model=8, num_heads=2, num_layers=1, num_neighbours=4)
    model = AttentionPolicy(config)
    with torch.no_grad():  # a policy that holds units back as carbon gets dearer
        model.unused_head.bias.fill_(0.0)
        model.global_embed.weight[:, CARBON] = 3.0
        model.unused_head.weight.fill_(0.5)
    checkpoint = save_checkpoint(
        tmp_path / "conditioned" / "checkpoint.pt",
        model_config=config,
        state_dict=model.state_dict(),
        optimizer_state={},
        step=0,
        update=0,
        rng_states={},
        extra={},
    )
    out = tmp_path / "front"
    args = ["pareto", "tiny", "--seeds", "1", "--budgets", "20", "--carbon-weights", "0,20"]
    args += ["--checkpoint", str(checkpoint), "--workers", "1", "--out", str(out), "--quiet"]
    args += ["--set", "time.num_steps=4", "--set", "time.start_hour=8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with (out / "points.csv").open() as f:
        points = [p for p in csv.DictReader(f) if p["policy"] == "conditioned"]
    assert sorted(float(p["carbon_weight"]) for p in points) == [0.0, 20.0]
    kg = {float(p["carbon_weight"]): float(p["compute_kgco2"]) for p in points}
    assert kg[20.0] != kg[0.0]
