"""Credit and advantages per slot against hand numbers: GAE per slot, twins, the coupling."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from agents.training.buffer import Batch, Rollout  # noqa: E402 (after the importorskip above)
from agents.training.config import TrainConfig  # noqa: E402
from agents.training.credit import (  # noqa: E402
    Coupling,
    JointCredit,
    NodeCredit,
    Returns,
    joint_credit_advantages,
    make_credit,
    node_credit_advantages,
    slot_advantages,
)
from simcity.env import CityEnv  # noqa: E402


def rollout(
    rewards: list[list[list[float]]],
    *,
    values: list[list[list[float]]] | None = None,
    actions: list[list[list[float]]] | None = None,
    mean_actions: list[list[list[float]]] | None = None,
    log_std: float = 0.0,
    dones: list[list[bool]] | None = None,
    starts: list[list[bool]] | None = None,
    next_value: list[list[float]] | None = None,
) -> Rollout:
    """A rollout (T, E, S), by default with no episode end or day start, next values 0,
    one-feature observations."""
    r = torch.tensor(rewards)
    T, E, S = r.shape
    v = torch.zeros(T, E, S) if values is None else torch.tensor(values)
    a = torch.zeros(T, E, S) if actions is None else torch.tensor(actions)
    m = torch.zeros(T, E, S) if mean_actions is None else torch.tensor(mean_actions)
    return Rollout(
        obs_nodes=torch.arange(T * E, dtype=torch.float32).view(T, E, 1, 1),
        obs_globals=torch.zeros(T, E, 1),
        actions=a,
        mean_actions=m,
        log_std=torch.tensor(log_std),
        log_probs=torch.zeros(T, E, S),
        rewards=r,
        values=v,
        dones=torch.zeros(T, E, dtype=torch.bool) if dones is None else torch.tensor(dones),
        starts=torch.zeros(T, E, dtype=torch.bool) if starts is None else torch.tensor(starts),
        next_value=torch.zeros(E, S) if next_value is None else torch.tensor(next_value),
        finished=(),
    )


def test_slot_advantages_run_gae_per_slot() -> None:
    # One env, two steps, two slots; gamma = 0.5, lam = 1, values 0, next value 0:
    # slot 0: A1 = 2, A0 = 1 + 0.5 * 2 = 2;  slot 1: A1 = 4, A0 = 0 + 0.5 * 4 = 2.
    got = slot_advantages(rollout([[[1.0, 0.0]], [[2.0, 4.0]]]), Returns(0.5, 1.0, twins=False))
    assert got.advantages.tolist() == [[[2.0, 2.0]], [[2.0, 4.0]]]
    assert got.returns.tolist() == [[[2.0, 2.0]], [[2.0, 4.0]]]


def test_twins_take_each_advantage_less_its_pairs_mean_but_keep_the_returns() -> None:
    # Envs 0, 1 twin envs 2, 3 (E = 4, one step, a day's first, one slot): A = r, then
    # (A_e - A_twin) / 2.
    first = rollout([[[1.0], [5.0], [3.0], [2.0]]], starts=[[True] * 4])
    got = slot_advantages(first, Returns(0.9, 0.9, twins=True))
    assert got.advantages.flatten().tolist() == [-1.0, 1.5, 1.0, -1.5]
    assert got.returns.flatten().tolist() == [1.0, 5.0, 3.0, 2.0]


def test_twins_difference_every_step_or_only_a_days_first() -> None:
    # Two steps (gamma = lam = 0: A = r), E = 2 twins, one slot; step 0 starts the day.
    # Only there do the twins share a state: with first_step, step 1 keeps its own.
    twins = rollout([[[4.0], [2.0]], [[6.0], [1.0]]], starts=[[True, True], [False, False]])
    first = slot_advantages(twins, Returns(0.0, 0.0, twins=True, every_step=False))
    assert first.advantages.flatten().tolist() == [1.0, -1.0, 6.0, 1.0]
    every = slot_advantages(twins, Returns(0.0, 0.0, twins=True))
    assert every.advantages.flatten().tolist() == [1.0, -1.0, 2.5, -2.5]


def test_a_days_last_step_bootstraps_nothing() -> None:
    # One env, one slot, gamma = lam = 1, values 1 and 2; the day ends after step 1 and
    # the next observation (the next day's first) is worth 100. The day's end is terminal:
    # A1 = 3 - 2 = 1, A0 = 1 + 2 - 1 + A1 = 3; the 100 enters neither.
    day_end = rollout(
        [[[1.0]], [[3.0]]],
        values=[[[1.0]], [[2.0]]],
        dones=[[False], [True]],
        next_value=[[100.0]],
    )
    got = slot_advantages(day_end, Returns(1.0, 1.0, twins=False))
    assert got.advantages.flatten().tolist() == [3.0, 1.0]
    assert got.returns.flatten().tolist() == [4.0, 3.0]  # the day's rewards to go
    # Mid-day (no done) the same rollout bootstraps from the next value.
    mid_day = rollout([[[1.0]], [[3.0]]], values=[[[1.0]], [[2.0]]], next_value=[[100.0]])
    assert slot_advantages(mid_day, Returns(1.0, 1.0, twins=False)).returns.flatten().tolist() == [
        104.0,
        103.0,
    ]


def test_joint_credit_advantages_are_the_gae_of_the_one_slot() -> None:
    # gamma = 0.5, lam = 1: delta1 = 3 - 2 = 1, delta0 = 1 + 0.5 * 2 - 1 = 1; A0 = 1 + 0.5 * 1.
    got = joint_credit_advantages(
        rollout([[[1.0]], [[3.0]]], values=[[[1.0]], [[2.0]]]), Returns(0.5, 1.0, twins=False)
    )
    assert got.advantages.flatten().tolist() == [1.5, 1.0]
    assert got.returns.flatten().tolist() == [2.5, 3.0]


def test_node_credit_couples_the_budget_from_the_noise_played() -> None:
    # couple_budget's example: node 0 did better (A = 1, 0, 0 for nodes 0, 1 and the unused
    # slot), having taken share from node 1 (noise +1, -1, 0 at std 1, shares 1/2, 1/2).
    played = rollout(
        [[[1.0, 0.0, 0.0]]], actions=[[[1.0, -1.0, -1e9]]], mean_actions=[[[0.0, 0.0, -1e9]]]
    )
    returns = Returns(0.9, 0.9, twins=False)
    coupled = node_credit_advantages(played, returns, Coupling(None, 0.0))
    assert coupled.advantages.flatten().tolist() == [1.0, 1.0, 0.0]  # node 1 shares the gain
    assert coupled.returns.flatten().tolist() == [1.0, 0.0, 0.0]
    alone = node_credit_advantages(played, returns, None)
    assert alone.advantages.flatten().tolist() == [1.0, 0.0, 0.0]


def test_the_credits_map_slots_their_own_way() -> None:
    per_slot = torch.tensor([[1.0, 2.0, 4.0]])  # (B, N + 1), N = 2
    joint = JointCredit(Returns(0.9, 0.9, False), reward_scale=1.0, num_actions=3)
    node = NodeCredit(Returns(0.9, 0.9, False), reward_scale=1.0, coupling=None, num_slots=3)
    assert joint.log_probs(per_slot).tolist() == [[7.0]]  # the joint action's: a sum
    assert joint.values(per_slot).tolist() == [[4.0]]  # the unused slot's head
    assert torch.equal(node.log_probs(per_slot), per_slot)
    assert torch.equal(node.values(per_slot), per_slot)
    assert joint.entropy_per_slot(6.0) == 2.0 and node.entropy_per_slot(6.0) == 6.0


def test_make_credit_follows_the_config() -> None:
    city = CityEnv("tiny").city
    n = city.num_nodes
    joint = make_credit(TrainConfig(node_credit=False), city, 1.0, 0.3)
    assert isinstance(joint, JointCredit) and joint.num_slots == 1
    plain = make_credit(TrainConfig(budget_coupling=False), city, 1.0, 0.3)
    assert isinstance(plain, NodeCredit) and plain.num_slots == n + 1 and plain.coupling is None
    coupled = make_credit(TrainConfig(), city, 1.0, 0.3)
    assert isinstance(coupled, NodeCredit) and coupled.coupling == Coupling(None, 0.0)
    assert coupled.returns == Returns(0.8, 0.8, twins=True, every_step=True)
    first = make_credit(TrainConfig(twin_baseline="first_step"), city, 1.0, 0.3)
    assert not first.returns.every_step
    spill = make_credit(TrainConfig(spill_credit=True), city, 1.0, 0.3)
    assert isinstance(spill, NodeCredit) and spill.coupling is not None
    matrix = spill.coupling.neighbour_mean
    assert matrix is not None and matrix.is_sparse and spill.coupling.spill == 0.3
    row_sums = matrix.to_dense().sum(dim=1)  # each row a mean over the node's neighbours
    assert torch.allclose(row_sums[row_sums > 0], torch.ones(1))


def test_a_batch_flattens_steps_then_envs_and_rescales_values() -> None:
    played = rollout([[[1.0], [2.0]], [[3.0], [4.0]]], values=[[[2.0], [4.0]], [[6.0], [8.0]]])
    advantages = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]])
    batch = Batch.of(played, advantages, 2 * advantages, std=2.0)
    assert batch.size == 4
    assert batch.nodes.flatten().tolist() == [0.0, 1.0, 2.0, 3.0]  # row t * E + e
    assert batch.values.flatten().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert batch.returns.flatten().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert batch.advantages.flatten().tolist() == [1.0, 2.0, 3.0, 4.0]  # not rescaled
