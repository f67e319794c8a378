"""Analytics tiers outside the env: the baselines' tier rule, and the attention policy's
T logits per node (trained, played and refused where its tiers differ)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agents.policies.attention import AttentionConfig, AttentionPolicy
from agents.policies.baselines import BASELINES, make_baseline
from agents.policies.checkpoint import TrainedPolicy
from agents.policies.tiers import best_tier, on_tier
from agents.training.credit import on_tier_slots
from simcity.config.monitoring import AnalyticsTier
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError

TIERS = (
    AnalyticsTier(name="detector", flop_per_unit_min=1.15e15),
    AnalyticsTier(name="vlm", flop_per_unit_min=1.44e16, hazard_gain=3.0),
)


def tiered(tiers: tuple[AnalyticsTier, ...]) -> Scenario:
    scenario = load_scenario("tiny")
    compute = scenario.compute.model_copy(update={"tiers": tiers})
    return scenario.model_copy(update={"compute": compute})


@pytest.fixture(scope="module")
def env() -> CityEnv:
    return CityEnv(tiered(TIERS))


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_give_valid_actions_on_the_rules_tier(env: CityEnv, name: str) -> None:
    policy = make_baseline(name, env, seed=0)
    obs, _ = env.reset(seed=0)
    policy.reset(0)
    for _ in range(2):
        action = policy.act(obs)
        assert action.shape == env.action_space.shape
        assert np.isfinite(action).all() and (action >= 0).all()
        assert (action[1:-1:2] == 0).all()  # nothing on the VLM tier: 3 / 12.5 per capacity
        assert action[:-1].sum() > 0
        obs, *_ = env.step(action)


def test_the_rule_picks_the_tier_that_sees_most_per_unit_of_capacity() -> None:
    """Detector: gain 1 per 1 of capacity. VLM 12.52x the FLOPs: gain 3 loses, 13 wins."""
    assert best_tier(tiered(TIERS)) == 0
    better = (TIERS[0], TIERS[1].model_copy(update={"hazard_gain": 13.0}))
    scenario = tiered(better)
    assert scenario.compute.tier_cost[1] == pytest.approx(1.44e16 / 1.15e15)
    assert best_tier(scenario) == 1
    env = CityEnv(scenario)
    obs, _ = env.reset(seed=0)
    action = make_baseline("risk", env).act(obs)
    assert (action[0:-1:2] == 0).all() and action[1:-1:2].sum() > 0


def test_first_tier_rule_matches_the_plain_allocation(env: CityEnv) -> None:
    """The same node weights give each node the same capacity, all of it detector units."""
    weights = np.random.default_rng(0).random(17)
    units = env.allocation(on_tier(weights, 2))
    np.testing.assert_allclose(units[:, 0], CityEnv("tiny").allocation(weights), rtol=1e-15)
    assert (units[:, 1] == 0).all()


def test_downtown_vlm_baseline_steps() -> None:
    env = CityEnv("downtown_vlm")
    policy = make_baseline("posterior", env)
    obs, _ = env.reset(seed=0)
    action = policy.act(obs)
    assert action.shape == (env.city.num_nodes * 2 + 1,)
    env.step(action)


def test_attention_outputs_t_logits_per_node_node_major(env: CityEnv) -> None:
    torch.manual_seed(0)
    model = AttentionPolicy(AttentionConfig(num_tiers=2))
    policy = TrainedPolicy(model, env)
    obs, _ = env.reset(seed=0)
    action = policy.act(obs)
    assert action.shape == env.action_space.shape and np.isclose(action.sum(), 1.0)
    nodes = torch.as_tensor(obs["nodes"]).unsqueeze(0)
    glob = torch.as_tensor(obs["globals"]).unsqueeze(0)
    out = model(nodes, glob, policy.neighbours, policy.distances)
    x = model.norm(_tokens(model, nodes, glob, policy))
    head = model.node_head(x)[0]  # (N, T)
    torch.testing.assert_close(out.logits[0, :-1].view(-1, 2), head)  # slot i * T + t
    assert out.value.shape == (1, env.city.num_nodes + 1)  # one value per node


def _tokens(model: AttentionPolicy, nodes: torch.Tensor, glob: torch.Tensor, policy: TrainedPolicy):  # type: ignore[no-untyped-def]
    from agents.policies.attention import padding_mask

    x = model.node_embed(nodes) + model.global_embed(glob).unsqueeze(1)
    mask = padding_mask(policy.neighbours)
    for block in model.blocks:
        x, _ = block(x, policy.neighbours, policy.distances, mask)
    return x


def test_a_policy_refuses_a_scenario_with_other_tiers(env: CityEnv) -> None:
    with pytest.raises(SimcityError, match="1 analytics tier"):
        TrainedPolicy(AttentionPolicy(AttentionConfig()), env)
    with pytest.raises(SimcityError, match="2 analytics tier"):
        TrainedPolicy(AttentionPolicy(AttentionConfig(num_tiers=2)), CityEnv("tiny"))


def test_tier_slots_share_their_nodes_value() -> None:
    value = torch.tensor([[1.0, 2.0, 3.0, 9.0]])
    assert on_tier_slots(value, 1) is value
    assert on_tier_slots(value, 3)[0].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 9]


def test_training_on_tiers_writes_a_checkpoint_that_plays_them(tmp_path: Path) -> None:
    """Teacher (labels on the rule's tier, a floor on the other) and PPO on a tiered tiny day;
    the checkpoint records two tiers, and the CLI runs it on the same scenario."""
    from agents.training.config import TeacherConfig, TrainConfig
    from agents.training.train import train

    scenario = tiered(TIERS).model_copy(
        update={"time": load_scenario("tiny").time.model_copy(update={"num_steps": 8})}
    )
    teacher = TeacherConfig(days=1, dagger_rounds=0, epochs=2, critic_updates=1)
    config = TrainConfig(
        total_steps=64, num_envs=2, num_steps=8, num_minibatches=2, teacher=teacher
    )
    result = train(scenario, config, tmp_path / "run")
    from agents.policies.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(result.checkpoint_path)
    assert checkpoint.model_config.num_tiers == 2
    env = CityEnv(scenario)
    policy = TrainedPolicy.from_checkpoint(checkpoint, env)
    obs, _ = env.reset(seed=1)
    action = policy.act(obs)
    vlm = action[1:-1:2].sum() / action[:-1].sum()
    assert 0.0 < vlm < 0.5  # learnt from labels that put the detector first
