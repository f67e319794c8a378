"""PPO math against hand-computed numbers: GAE, the clipped loss, the schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents.training.ppo_math import (
    PPOLoss,
    RunningStd,
    compute_gae,
    couple_budget,
    linear_schedule,
    ppo_loss,
    standardise_advantages,
)
from agents.training.train import slot_rewards

# One env, three steps, shared by the GAE cases. gamma * lam = 0.72.
GAMMA, LAM = 0.9, 0.8
REWARDS = [1.0, 2.0, 3.0]
VALUES = [0.5, 1.0, 1.5]
NEXT_VALUE = 2.0


def gae(
    dones: list[bool],
    truncated_bootstrap: list[float] | None = None,
) -> tuple[list[float], list[float]]:
    """`compute_gae` on the shared T=3, E=1 rollout with these episode ends."""
    advantages, returns = compute_gae(
        torch.tensor(REWARDS).unsqueeze(1),
        torch.tensor(VALUES).unsqueeze(1),
        torch.tensor(dones).unsqueeze(1),
        torch.tensor([NEXT_VALUE]),
        torch.tensor([dones[-1]]),
        gamma=GAMMA,
        lam=LAM,
        truncated_bootstrap=(
            None if truncated_bootstrap is None else torch.tensor(truncated_bootstrap).unsqueeze(1)
        ),
    )
    return advantages.squeeze(1).tolist(), returns.squeeze(1).tolist()


def test_gae_without_episode_end() -> None:
    # delta2 = 3 + 0.9 * 2.0 - 1.5 = 3.3                 A2 = 3.3
    # delta1 = 2 + 0.9 * 1.5 - 1.0 = 2.35                A1 = 2.35 + 0.72 * 3.3   = 4.726
    # delta0 = 1 + 0.9 * 1.0 - 0.5 = 1.4                 A0 = 1.4  + 0.72 * 4.726 = 4.80272
    advantages, returns = gae([False, False, False])
    assert advantages == pytest.approx([4.80272, 4.726, 3.3])
    assert returns == pytest.approx([5.30272, 5.726, 4.8])


def test_gae_terminal_in_the_middle_neither_bootstraps_nor_carries() -> None:
    # Step 1 terminates: its target is the reward alone, and A2 belongs to the next episode.
    # delta2 = 3 + 0.9 * 2.0 - 1.5 = 3.3                 A2 = 3.3
    # delta1 = 2 + 0           - 1.0 = 1.0               A1 = 1.0
    # delta0 = 1 + 0.9 * 1.0 - 0.5 = 1.4                 A0 = 1.4 + 0.72 * 1.0 = 2.12
    advantages, returns = gae([False, True, False])
    assert advantages == pytest.approx([2.12, 1.0, 3.3])
    assert returns == pytest.approx([2.62, 2.0, 4.8])


def test_gae_truncated_step_bootstraps_from_its_final_observation() -> None:
    # Step 1 hits the time limit; its final observation is worth 4.0 (0 elsewhere).
    # delta2 = 3 + 0.9 * 2.0 - 1.5 = 3.3                 A2 = 3.3
    # delta1 = 2 + 0.9 * 4.0 - 1.0 = 4.6                 A1 = 4.6 (still no carry from A2)
    # delta0 = 1 + 0.9 * 1.0 - 0.5 = 1.4                 A0 = 1.4 + 0.72 * 4.6 = 4.712
    advantages, returns = gae([False, True, False], truncated_bootstrap=[0.0, 4.0, 0.0])
    assert advantages == pytest.approx([4.712, 4.6, 3.3])
    assert returns == pytest.approx([5.212, 5.6, 4.8])


def test_gae_ignores_truncated_bootstrap_where_no_episode_ended() -> None:
    assert gae([False, True, False], [99.0, 0.0, -99.0]) == gae([False, True, False])
    assert gae([False, True, False], [0.0, 0.0, 0.0]) == gae([False, True, False])


def test_gae_last_step_terminal_ignores_next_value() -> None:
    # delta2 = 3 + 0 - 1.5 = 1.5                         A2 = 1.5
    # delta1 = 2.35                                      A1 = 2.35 + 0.72 * 1.5  = 3.43
    # delta0 = 1.4                                       A0 = 1.4  + 0.72 * 3.43 = 3.8696
    advantages, _ = gae([False, False, True])
    assert advantages == pytest.approx([3.8696, 3.43, 1.5])


def test_gae_envs_are_independent_and_returns_are_advantages_plus_values() -> None:
    rewards = torch.tensor([REWARDS, [0.0, -1.0, 0.5]]).T  # (T, E) = (3, 2)
    values = torch.tensor([VALUES, [0.2, 0.1, -0.3]]).T
    dones = torch.tensor([[False, True, False], [True, False, True]]).T
    bootstrap = torch.tensor([[0.0, 4.0, 0.0], [0.7, 0.0, 0.0]]).T
    advantages, returns = compute_gae(
        rewards,
        values,
        dones,
        torch.tensor([NEXT_VALUE, 5.0]),
        dones[-1],
        gamma=GAMMA,
        lam=LAM,
        truncated_bootstrap=bootstrap,
    )
    assert advantages[:, 0].tolist() == pytest.approx([4.712, 4.6, 3.3])
    # Env 1: steps 0 (truncated, final obs worth 0.7) and 2 (terminated) end episodes.
    # A2 = 0.5 + 0 - (-0.3) = 0.8;  A1 = -1 + 0.9 * (-0.3) - 0.1 + 0.72 * 0.8 = -0.794
    # A0 = 0 + 0.9 * 0.7 - 0.2 = 0.43 (truncated, bootstraps from 0.7)
    assert advantages[:, 1].tolist() == pytest.approx([0.43, -0.794, 0.8])
    torch.testing.assert_close(returns, advantages + values)


def test_gae_rejects_next_done_that_disagrees_with_the_last_done() -> None:
    with pytest.raises(ValueError, match="next_done"):
        compute_gae(
            torch.zeros(3, 1),
            torch.zeros(3, 1),
            torch.tensor([[True], [False], [False]]),
            torch.zeros(1),
            torch.tensor([True]),
            gamma=GAMMA,
            lam=LAM,
        )


def test_gae_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="values"):
        compute_gae(
            torch.zeros(3, 2),
            torch.zeros(3, 1),
            torch.zeros(3, 2, dtype=torch.bool),
            torch.zeros(2),
            torch.zeros(2, dtype=torch.bool),
            gamma=GAMMA,
            lam=LAM,
        )


# A minibatch of six with clip_coef = 0.2, so the ratio's trust range is [0.8, 1.2].
CLIP = 0.2
RATIOS = [1.1, 1.5, 0.5, 0.5, 1.5, 0.95]  # sum(r - 1) != 0, so k1 != k3 below
ADVANTAGES = [2.0, 1.0, -1.0, 1.0, -1.0, -3.0]
# Per-sample policy loss max(-A * r, -A * clip(r)):
#   r=1.1 A=+2  inside:              max(-2.2, -2.2) = -2.2
#   r=1.5 A=+1  above, clip binds:   max(-1.5, -1.2) = -1.2
#   r=0.5 A=-1  below, clip binds:   max( 0.5,  0.8) =  0.8
#   r=0.5 A=+1  below, clip idle:    max(-0.5, -0.8) = -0.5
#   r=1.5 A=-1  above, clip idle:    max( 1.5,  1.2) =  1.5
#   r=0.95 A=-3 inside:              max(2.85, 2.85) = 2.85
# mean = 1.25 / 6
POLICY_LOSS = 1.25 / 6
# |r - 1| > 0.2 for r in {1.5, 0.5, 0.5, 1.5}: 4 of 6.
CLIP_FRACTION = 4 / 6
# (r - 1) - ln r: 1.1 -> 0.00468982, 1.5 -> 0.09453489 (x2), 0.5 -> 0.19314718 (x2),
# 0.95 -> 0.00129329; sum 0.58134726, mean 0.09689121. (The naive mean of -ln r would be
# 0.08855788.)
APPROX_KL = 0.09689121
# Values (old, new, return) and squared errors (unclipped, of old + clip(new - old, ±0.2)):
#   (0, 1.0, 0): 1.00 vs (0.2 - 0)^2 = 0.04  -> max 1.00
#   (0, 0.5, 1): 0.25 vs (0.2 - 1)^2 = 0.64  -> max 0.64 (clipping is pessimistic)
#   (1, 1.1, 2): 0.81 vs (1.1 - 2)^2 = 0.81  -> max 0.81 (inside the range)
#   three zeros.
OLD_VALUES = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
NEW_VALUES = [1.0, 0.5, 1.1, 0.0, 0.0, 0.0]
RETURNS = [0.0, 1.0, 2.0, 0.0, 0.0, 0.0]
VALUE_LOSS = 0.5 * (1.0 + 0.25 + 0.81) / 6
CLIPPED_VALUE_LOSS = 0.5 * (1.0 + 0.64 + 0.81) / 6


def loss_on_batch(
    *,
    clip_value: bool = False,
    normalise_advantages: bool = False,
    advantages: list[float] = ADVANTAGES,
    requires_grad: bool = False,
) -> tuple[PPOLoss, torch.Tensor, torch.Tensor, torch.Tensor]:
    """`ppo_loss` on the hand-computed batch; returns the loss and its three live inputs."""
    new_log_prob = torch.tensor(RATIOS, dtype=torch.float64).log().requires_grad_(requires_grad)
    new_value = torch.tensor(NEW_VALUES, dtype=torch.float64, requires_grad=requires_grad)
    entropy = torch.full((6,), 0.5, dtype=torch.float64, requires_grad=requires_grad)
    loss = ppo_loss(
        new_log_prob,
        torch.zeros(6, dtype=torch.float64),
        torch.tensor(advantages, dtype=torch.float64),
        new_value,
        torch.tensor(OLD_VALUES, dtype=torch.float64),
        torch.tensor(RETURNS, dtype=torch.float64),
        entropy,
        clip_coef=CLIP,
        vf_coef=0.5,
        ent_coef=0.01,
        clip_value=clip_value,
        normalise_advantages=normalise_advantages,
    )
    return loss, new_log_prob, new_value, entropy


def test_ppo_loss_against_hand_numbers() -> None:
    loss, *_ = loss_on_batch()
    assert loss.policy.item() == pytest.approx(POLICY_LOSS)
    assert loss.value.item() == pytest.approx(VALUE_LOSS)
    assert loss.entropy.item() == pytest.approx(0.5)
    assert loss.total.item() == pytest.approx(POLICY_LOSS + 0.5 * VALUE_LOSS - 0.01 * 0.5)


def test_ppo_loss_clipped_value_against_hand_numbers() -> None:
    loss, *_ = loss_on_batch(clip_value=True)
    assert loss.value.item() == pytest.approx(CLIPPED_VALUE_LOSS)
    assert loss.total.item() == pytest.approx(POLICY_LOSS + 0.5 * CLIPPED_VALUE_LOSS - 0.005)


def test_ppo_loss_diagnostics_against_hand_numbers() -> None:
    loss, *_ = loss_on_batch()
    assert loss.clip_fraction.item() == pytest.approx(CLIP_FRACTION)
    assert loss.approx_kl.item() == pytest.approx(APPROX_KL, abs=1e-8)
    assert math.isclose(
        loss.approx_kl.item(), sum((r - 1) - math.log(r) for r in RATIOS) / 6, rel_tol=1e-9
    )


def test_ppo_loss_gradients_are_finite_and_zero_where_the_clip_binds() -> None:
    loss, new_log_prob, new_value, entropy = loss_on_batch(clip_value=True, requires_grad=True)
    loss.total.backward()
    for tensor in (new_log_prob, new_value, entropy):
        assert tensor.grad is not None
        assert torch.isfinite(tensor.grad).all()
    assert new_log_prob.grad is not None and new_value.grad is not None
    # d/d(log p) of -A * r / M is -A * r / M where the unclipped term is the max, else 0.
    expected = [-2.0 * 1.1 / 6, 0.0, 0.0, -1.0 * 0.5 / 6, 1.0 * 1.5 / 6, 3.0 * 0.95 / 6]
    assert new_log_prob.grad.tolist() == pytest.approx(expected)
    # vf_coef * 0.5 * 2 * (v - R) / M where the unclipped error wins; sample 1 is clipped.
    assert new_value.grad.tolist() == pytest.approx([0.5 / 6, 0.0, 0.5 * -0.9 / 6, 0, 0, 0])
    assert entropy.grad is not None
    assert entropy.grad.tolist() == pytest.approx([-0.01 / 6] * 6)


def test_standardise_advantages_gives_mean_zero_std_one() -> None:
    advantages = torch.tensor([3.0, -1.0, 0.5, 10.0, 2.0], dtype=torch.float64)
    standardised = standardise_advantages(advantages)
    assert standardised.mean().item() == pytest.approx(0.0, abs=1e-12)
    assert standardised.std().item() == pytest.approx(1.0, abs=1e-7)
    assert standardise_advantages(torch.tensor([4.0])).tolist() == [0.0]


def test_ppo_loss_normalises_advantages_within_the_minibatch() -> None:
    loss, *_ = loss_on_batch(normalise_advantages=True)
    standardised = standardise_advantages(torch.tensor(ADVANTAGES, dtype=torch.float64))
    by_hand, *_ = loss_on_batch(advantages=standardised.tolist())
    assert loss.policy.item() == pytest.approx(by_hand.policy.item())
    assert loss.policy.item() != pytest.approx(POLICY_LOSS)


def test_linear_schedule() -> None:
    assert linear_schedule(1.0, 0.0, 0.0) == 1.0
    assert linear_schedule(1.0, 0.0, 0.25) == pytest.approx(0.75)
    assert linear_schedule(2.5e-4, 0.0, 1.0) == 0.0
    assert linear_schedule(1.0, 3.0, 0.5) == pytest.approx(2.0)
    assert linear_schedule(1.0, 0.0, 1.2) == 0.0
    assert linear_schedule(1.0, 0.0, -0.1) == 1.0


def test_running_std_matches_the_std_of_everything_seen() -> None:
    generator = torch.Generator().manual_seed(0)
    chunks = [torch.randn(n, generator=generator) * 3 + 5 for n in (1, 7, 64, 3)]
    running = RunningStd()
    assert running.std == 1.0  # nothing seen yet
    for chunk in chunks:
        running.update(chunk)
    everything = torch.cat(chunks).double()
    assert running.std == pytest.approx(everything.std(unbiased=False).item(), rel=1e-12)
    assert RunningStd(*running.state()).std == running.std  # what a checkpoint restores


def test_slot_rewards_credit_each_node_with_its_own_cost() -> None:
    reward = np.array([-0.6, -0.3])  # (E,) = -cost_total * scale
    node_cost = np.array([[100.0, 500.0, 0.0], [0.0, 0.0, 300.0]])  # (E, N)
    per_slot = slot_rewards(reward, node_cost, scale=0.001, node_credit=True)  # (E, N + 1)
    # Node i earns -cost_i * scale * N; the unused slot the city's reward.
    torch.testing.assert_close(
        per_slot,
        torch.tensor([[-0.3, -1.5, 0.0, -0.6], [0.0, 0.0, -0.9, -0.3]]),
    )
    assert per_slot[:, :3].mean(1).tolist() == pytest.approx(reward.tolist())
    joint = slot_rewards(reward, node_cost, scale=0.001, node_credit=False)
    torch.testing.assert_close(joint, torch.tensor([[-0.6], [-0.3]]))


@pytest.mark.parametrize("spill", [0.0, 0.25])
def test_budget_coupling_turns_own_cost_credit_into_the_city_gradient(spill: float) -> None:
    """Node j's cost depends on its watch ``m_j = s_j + spill * mean of its neighbours'
    shares``. Twin rollouts (noise +eps and -eps) credited with each node's own cost,
    coupled, estimate the gradient of the city's total cost; uncoupled they do not."""
    generator = torch.Generator().manual_seed(3)
    n, samples, std = 6, 200_000, 0.02
    a, b = torch.rand(2, n, generator=generator, dtype=torch.float64) * 4 + 0.5  # (N,) each
    b = 3 * b
    adjacency = torch.zeros(n, n, dtype=torch.float64)
    for i, j in [*((i, (i + 1) % n) for i in range(n)), (0, 3)]:  # a ring and one chord
        adjacency[i, j] = adjacency[j, i] = 1.0
    w = adjacency / adjacency.sum(1, keepdim=True)  # (N, N) neighbour mean

    def own_cost(s: torch.Tensor) -> torch.Tensor:  # (..., N) per node, from its watch
        return a * torch.exp(-b * (s + spill * s @ w.T)) + 0.3 * s

    logits = torch.randn(1, n + 1, generator=generator, dtype=torch.float64)  # (1, N + 1)
    z = logits.clone().requires_grad_(True)
    (-own_cost(torch.softmax(z, -1)[:, :-1]).sum()).backward()
    truth = z.grad[0]  # (N + 1,) gradient of the city's reward
    eps = torch.randn(samples, n + 1, generator=generator, dtype=torch.float64)  # (M, N + 1)

    def rewards(noise: torch.Tensor) -> torch.Tensor:  # (M, N + 1): own, then the city's
        own = -own_cost(torch.softmax(logits + std * noise, -1)[:, :-1])
        return torch.cat([own, own.sum(-1, keepdim=True)], dim=-1)

    advantages = 0.5 * (rewards(eps) - rewards(-eps))  # twins: (A_e - A_twin) / 2

    def estimate(adv: torch.Tensor) -> torch.Tensor:  # score-function gradient (N + 1,)
        return (adv * eps).mean(0) / std

    scale = truth.abs().max().item()
    tol = {"rtol": 0.03, "atol": 0.03 * scale}
    spread = logits.expand(samples, -1)
    coupled = estimate(couple_budget(advantages, eps, spread, w.to_sparse(), spill))
    torch.testing.assert_close(coupled, truth, **tol)
    dense = estimate(couple_budget(advantages, eps, spread, w, spill))
    torch.testing.assert_close(dense, coupled)
    assert (estimate(advantages) - truth)[:-1].abs().max() > 0.2 * scale  # uncoupled
    if spill > 0:  # the budget alone is not enough where units spill onto neighbours
        budget_only = estimate(couple_budget(advantages, eps, spread))
        assert (budget_only - truth)[:-1].abs().max() > 0.1 * scale
