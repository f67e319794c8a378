"""Rollouts on a short `tiny` day: twins' noise and days, what a rollout collects across a
day's end, the replay a resume relies on, the learner and a critic-only update."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.policies.attention import (  # noqa: E402 (after the importorskip above)
    AttentionConfig,
    AttentionPolicy,
    action_distribution,
    count_flops_per_decision,
)
from agents.training.buffer import Batch  # noqa: E402
from agents.training.config import TeacherConfig, TrainConfig  # noqa: E402
from agents.training.credit import Credit, make_credit  # noqa: E402
from agents.training.learner import Learner, make_learner  # noqa: E402
from agents.training.ppo_math import RunningStd  # noqa: E402
from agents.training.resume import RunStart, fresh_start, replay_episodes  # noqa: E402
from agents.training.rollout import (  # noqa: E402
    Episodes,
    TrainEnvs,
    collect_rollout,
    make_envs,
    sample_actions,
)
from simcity.config.scenario import Scenario, load_scenario  # noqa: E402

MODEL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)
# 2 envs, 24 steps per rollout over 16-step days: the first rollout crosses a day's end.
CONFIG = TrainConfig(
    num_envs=2, num_steps=24, num_minibatches=2, seed=3, model=MODEL, teacher=TeacherConfig(days=0)
)


@pytest.fixture(scope="module")
def short_day() -> Scenario:
    scenario = load_scenario("tiny")
    return scenario.model_copy(update={"time": scenario.time.model_copy(update={"num_steps": 16})})


def start(
    scenario: Scenario, config: TrainConfig = CONFIG
) -> tuple[TrainEnvs, Learner, Credit, Episodes]:
    """A fresh run's envs, learner, credit and first episodes, as `train` sets them up."""
    envs = make_envs(scenario, config)
    city = envs.first.city
    torch.manual_seed(config.seed)
    learner = make_learner(AttentionPolicy(config.model), config, city)
    credit = make_credit(config, city, scenario.reward.scale, scenario.monitoring.spill)
    first = fresh_start(config.num_envs, city.num_nodes + 1)
    return envs, learner, credit, replay_episodes(envs, first, learner.flops_per_decision)


def test_twins_explore_with_mirrored_noise() -> None:
    logits = torch.randn(4, 3)  # (E, N + 1)
    dist = action_distribution(logits, torch.tensor(math.log(0.5)))
    torch.manual_seed(0)
    twins = sample_actions(logits, dist, twins=True)
    torch.manual_seed(0)
    eps = torch.randn(2, 3)  # one draw per pair
    torch.testing.assert_close(twins[:2] - logits[:2], 0.5 * eps)
    torch.testing.assert_close(twins[2:] - logits[2:], -0.5 * eps)
    torch.manual_seed(0)
    alone = sample_actions(logits, dist, twins=False)
    torch.manual_seed(0)
    assert torch.equal(alone, dist.sample())


def test_twins_reset_to_one_day_per_pair_and_a_new_day_per_episode(short_day: Scenario) -> None:
    config = TrainConfig(num_envs=4, num_steps=8, num_minibatches=1, teacher=TeacherConfig(days=0))
    envs = make_envs(short_day, config)
    n = envs.first.city.num_nodes
    even = np.ones((4, n + 1))

    def first_step(step: int) -> np.ndarray:
        """Nodes after one even step of the day starting at ``step`` (E, N, F): a day's
        midnight is the city's, the same every day; its draws start at the first step."""
        envs.reset(step, 0)
        return envs.vector.step(even)[0]["nodes"]

    nodes = first_step(0)
    assert np.array_equal(nodes[0], nodes[2]) and np.array_equal(nodes[1], nodes[3])
    assert not np.array_equal(nodes[0], nodes[1])
    assert not np.array_equal(first_step(4 * 16), nodes)  # the second day
    envs.vector.close()


def test_a_rollout_across_a_days_end(short_day: Scenario) -> None:
    envs, learner, credit, episodes = start(short_day)
    n = envs.first.city.num_nodes
    rollout, after = collect_rollout(envs, learner, credit, episodes, num_steps=24, value_std=1.0)
    assert rollout.rewards.shape == rollout.values.shape == (24, 2, n + 1)
    assert rollout.dones.any(dim=1).nonzero().flatten().tolist() == [15]  # the day's last step
    assert rollout.starts.all(dim=1).nonzero().flatten().tolist() == [0, 16]  # the days' first
    assert torch.equal(rollout.starts.any(dim=1), rollout.starts.all(dim=1))
    # The day's end is terminal: its last step's value target is its reward, nothing more.
    # (Its advantage is then its reward less its value, before the twins' difference.)
    torch.testing.assert_close(credit.advantages(rollout).returns[15], rollout.rewards[15])
    # Each node slot earns its own cost, scaled so that their mean is the city's reward.
    city_reward = rollout.rewards[..., -1]  # (T, E)
    torch.testing.assert_close(rollout.rewards[..., :-1].mean(-1), city_reward)
    # The day's returns, and the 8 steps of the next day carried over to the next rollout.
    np.testing.assert_allclose(rollout.finished, city_reward[:16].sum(0), rtol=1e-5)
    np.testing.assert_allclose(after.returns, city_reward[16:].sum(0), rtol=1e-5)
    assert after.step == 48
    assert torch.equal(after.actions, rollout.actions[16:])
    envs.vector.close()


def test_values_are_collected_in_money(short_day: Scenario) -> None:
    """``value_std`` only rescales the values: the same actions, values times it."""
    collected = []
    for value_std in (1.0, 2.0):
        envs, learner, credit, episodes = start(short_day)
        collected.append(
            collect_rollout(envs, learner, credit, episodes, num_steps=20, value_std=value_std)[0]
        )
        envs.vector.close()
    one, two = collected
    assert torch.equal(one.actions, two.actions)
    assert torch.equal(2.0 * one.values, two.values)
    assert torch.equal(2.0 * one.next_value, two.next_value)


def test_replay_rebuilds_the_episodes_under_way(short_day: Scenario) -> None:
    """What a resume relies on: reset to the day's seeds, replay the actions, same envs."""
    envs, learner, credit, episodes = start(short_day)
    _, after = collect_rollout(envs, learner, credit, episodes, num_steps=24, value_std=1.0)
    envs.vector.close()
    fresh = make_envs(short_day, CONFIG)
    replayed = replay_episodes(
        fresh, RunStart(1, after.step, after.actions, RunningStd()), learner.flops_per_decision
    )
    assert replayed.step == after.step
    np.testing.assert_array_equal(replayed.returns, after.returns)
    for key in after.obs:
        np.testing.assert_array_equal(replayed.obs[key], after.obs[key])
    fresh.vector.close()


def test_the_learner_trains_what_the_config_leaves_trainable(short_day: Scenario) -> None:
    city = make_envs(short_day, CONFIG).first.city
    config = TrainConfig(**{**CONFIG.__dict__, "freeze_encoder": True})
    model = AttentionPolicy(MODEL)
    learner = make_learner(model, config, city)
    trainable = {id(p) for p in learner.trainable}
    frozen = [model.log_std, *model.node_embed.parameters(), *model.global_embed.parameters()]
    frozen += list(model.blocks.parameters())
    assert not any(id(p) in trainable for p in frozen)  # twins fix the std; the encoder frozen
    critic = {id(p) for p in model.value_head.parameters()}
    assert critic <= trainable and not critic & {id(p) for p in learner.actor}
    assert {id(p) for p in learner.actor} | critic == trainable
    assert learner.optimizer.param_groups[0]["lr"] == config.lr
    flops = count_flops_per_decision(model, city.num_nodes, learner.neighbours, learner.distances)
    assert learner.flops_per_decision == flops > 0


@pytest.mark.parametrize("critic_only", [True, False])
def test_a_critic_only_update_leaves_the_actor_alone(
    short_day: Scenario, critic_only: bool
) -> None:
    from agents.training.update import ppo_update

    envs, learner, credit, episodes = start(short_day)
    rollout, _ = collect_rollout(envs, learner, credit, episodes, num_steps=24, value_std=1.0)
    envs.vector.close()
    advantages, returns = credit.advantages(rollout)
    before = {id(p): p.detach().clone() for p in learner.trainable}
    loss = ppo_update(
        learner,
        Batch.of(rollout, advantages, returns, 1.0),
        credit,
        CONFIG,
        critic_only=critic_only,
    )
    assert math.isfinite(loss.value.item())
    moved = {id(p) for p in learner.trainable if not torch.equal(p, before[id(p)])}
    actor = {id(p) for p in learner.actor}
    assert moved - actor  # the critic learns either way
    assert (moved & actor == set()) == critic_only
    assert (not any(id(p) in actor for p in learner.optimizer.state)) == critic_only
