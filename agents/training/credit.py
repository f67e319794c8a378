"""Credit: which reward each action slot learns from, and the advantages it is trained on.

Shapes: T rollout steps per env, E parallel envs, N nodes, S action slots credited
separately.

Credit per node (`NodeCredit`, ``TrainConfig.node_credit``, the default). Every action
slot is credited with its own cost, as in multi-agent PPO with shared weights (one
"agent" per node): the env's ``info["node_cost"]`` splits each step's cost over the nodes
(the damage of incidents there, its estimation error, compute in proportion to its
units), node i's log-weight is trained on the advantage of its own cost under its own
value head, and the "unused" slot on the whole city's reward. A node's allocation mostly
changes its own incidents' detection, so this cuts the variance of a 225-dimensional
joint action's policy gradient by orders of magnitude; what it leaves out is a node's
effect on its neighbours (monitoring spill) and, through the shared budget, on every
other node. `JointCredit` (``node_credit=False``) is textbook PPO on the joint action
(summed log-probabilities, one value).

Budget coupling. The nodes share one budget (the shares are a softmax of the
log-weights), so a node that takes more leaves less to the rest. With
``TrainConfig.budget_coupling`` (the default) each node's advantage also carries what its
extra share cost the other nodes (`agents.training.ppo_math.couple_budget`), which makes
the per-node policy gradients add up to the city's. Without it per-node credit is biased:
every node is pulled up by its own marginal benefit and down by its own compute bill,
whatever the others lose. On ``downtown`` (20k steps, 24 held-out days, 8 epochs, std
e^-1) the coupling took the trained policy from 18% to 37% of the uniform-to-clairvoyant gap;
with 4 epochs and std e^-0.5 (the defaults) to 45%. ``TrainConfig.spill_credit`` also
credits a node with the watch its units spill onto its neighbours (``monitoring.spill``);
it is exact in the same sense (tests) but measured no gain there (44% vs 45%), so it is
off by default.

Tiers. With T analytics tiers (``[[compute.tiers]]``) every (node, tier) slot is credited:
slot ``i * T + t`` learns from node i's cost under node i's value, and the budget
coupling runs over all N * T slots, which share one GPU capacity (a larger weight on
node i's VLM takes capacity from every other slot, node i's detector included).

Twins. With ``TrainConfig.twins`` each env's advantage is less its twin's
(`agents.training.ppo_math.mirrored_advantages`; `agents.training.rollout`). On a day's
first step the twins share their state, and the pair's gradient is exactly the sum of its
two score-function estimates with the shared incidents' luck taken out. Later the twins'
states differ (their allocations did), and ``(A_e - A_twin) / 2`` credits env e's logits
with ``(A_e noise_e + A_twin noise_twin) / 2``, an estimate at two states: its bias in the
weights' gradient is ``(g_e - g_twin)' (J_twin - J_e) / 2`` (g the true gradients of the
two states' logits, J their Jacobians in the weights), second order in how far the
states drifted. ``bench/twin_bias.py`` measured it on ``tiny`` (a policy trained 20k
steps; 4 days x 4 pairs): the Jacobians differ by 1-5% (``||(J_e - J_twin)' v|| /
||J_e' v||``) while the twins' own advantages correlate at 0.79-1.00, which the
difference takes out. Trained 20k steps from scratch (2 seeds, 16 validation days each),
the twin difference on every step scored -0.32 a day, on first steps only (exact:
``twin_baseline = "first_step"``) -0.34 (paired difference +0.02 ± 0.01), no twins -0.40;
so every step is the default.

The day's end is terminal (`agents.training.rollout`): GAE bootstraps nothing past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from agents.training.buffer import Rollout
from agents.training.config import TrainConfig
from agents.training.ppo_math import compute_gae, couple_budget, mirrored_advantages
from simcity.city.graph import City
from simcity.errors import SimcityError
from simcity.monitoring.monitor import neighbour_mean


class Advantages(NamedTuple):
    """Advantages and value targets (in money) per credited slot, (T, E, S) each."""

    advantages: torch.Tensor
    returns: torch.Tensor


@dataclass(frozen=True)
class Returns:
    """How returns are discounted: GAE's ``gamma`` and ``lam``; ``twins`` mirrors the
    advantages of every step, or of a day's first step only without ``every_step``."""

    gamma: float
    lam: float
    twins: bool
    every_step: bool = True


@dataclass(frozen=True)
class Coupling:
    """The budget coupling's inputs: neighbour-mean matrix (N, N) and spill, for spill credit."""

    neighbour_mean: torch.Tensor | None
    spill: float


def slot_rewards(
    reward: np.ndarray, node_cost: np.ndarray, scale: float, node_credit: bool
) -> torch.Tensor:
    """Rewards per action slot (E, S) from the env's reward (E,) and ``node_cost`` (E, N).

    With ``node_credit``, S = N + 1: node i earns ``-node_cost_i * scale * N`` (its own
    cost, scaled so that the mean over nodes equals the env's reward) and the "unused"
    slot the env's reward. Otherwise S = 1: the env's reward.
    """
    if not node_credit:
        return torch.as_tensor(reward, dtype=torch.float32).unsqueeze(1)  # (E, 1)
    n = node_cost.shape[1]
    per_node = -np.asarray(node_cost, dtype=np.float64) * scale * n  # (E, N)
    return torch.as_tensor(np.concatenate([per_node, reward[:, None]], axis=1), dtype=torch.float32)


def slot_advantages(rollout: Rollout, returns: Returns) -> Advantages:
    """GAE of every slot over (T, E * S), every slot of an env sharing its dones, a day's
    end terminal; with twins, on a day's first step (on every step with ``every_step``),
    each env's advantage less its pair's mean, ``(A_e - A_twin) / 2``."""
    T, E, S = rollout.rewards.shape
    slot_dones = rollout.dones.repeat_interleave(S, dim=1)  # (T, E * S)
    advantages, targets = compute_gae(
        rollout.rewards.flatten(1),
        rollout.values.flatten(1),
        slot_dones,
        rollout.next_value.flatten(),
        slot_dones[-1],
        gamma=returns.gamma,
        lam=returns.lam,
    )  # (T, E * S) each; truncated_bootstrap None: every episode end is terminal
    advantages = advantages.view(T, E, S)
    if returns.twins:
        mirrored = mirrored_advantages(advantages)  # (T, E, S)
        shared = rollout.starts.unsqueeze(-1)  # (T, E, 1): the twins' state is one
        advantages = mirrored if returns.every_step else torch.where(shared, mirrored, advantages)
    return Advantages(advantages, targets.view(T, E, S))


def joint_credit_advantages(rollout: Rollout, returns: Returns) -> Advantages:
    """Advantages of the joint action: one slot, the city's reward (S = 1)."""
    return slot_advantages(rollout, returns)


def node_credit_advantages(
    rollout: Rollout, returns: Returns, coupling: Coupling | None
) -> Advantages:
    """Advantages of each node's own cost (S = N + 1); with ``coupling``, plus what its
    share did to the other nodes (`agents.training.ppo_math.couple_budget`)."""
    own = slot_advantages(rollout, returns)
    if coupling is None:
        return own
    noise = (rollout.actions - rollout.mean_actions) / rollout.log_std.exp()  # (T, E, N + 1)
    coupled = couple_budget(
        own.advantages, noise, rollout.mean_actions, coupling.neighbour_mean, coupling.spill
    )  # (T, E, S)
    return Advantages(coupled, own.returns)


@dataclass(frozen=True)
class JointCredit:
    """Textbook PPO: the summed log-probability of the N + 1 slots, one value (the
    "unused" slot's), the city's reward."""

    returns: Returns
    reward_scale: float
    num_actions: int  # N + 1
    num_slots: int = 1

    def log_probs(self, per_slot: torch.Tensor) -> torch.Tensor:
        """Log-probabilities or entropies (..., N + 1) as the joint action's (..., 1)."""
        return per_slot.sum(-1, keepdim=True)

    def values(self, value: torch.Tensor) -> torch.Tensor:
        """The critic's outputs (..., N + 1) as the one value (..., 1)."""
        return value[..., -1:]

    def rewards(self, reward: np.ndarray, node_cost: np.ndarray) -> torch.Tensor:
        return slot_rewards(reward, node_cost, self.reward_scale, node_credit=False)  # (E, 1)

    def advantages(self, rollout: Rollout) -> Advantages:
        return joint_credit_advantages(rollout, self.returns)

    def entropy_per_slot(self, entropy: float) -> float:
        return entropy / self.num_actions


@dataclass(frozen=True)
class NodeCredit:
    """Each slot its own: log-probability, value head and cost (S = N + 1)."""

    returns: Returns
    reward_scale: float
    coupling: Coupling | None  # None: no budget coupling
    num_slots: int  # N * T + 1
    num_tiers: int = 1

    def log_probs(self, per_slot: torch.Tensor) -> torch.Tensor:
        return per_slot

    def values(self, value: torch.Tensor) -> torch.Tensor:
        """The critic's node values (..., N + 1) for every slot (..., N * T + 1)."""
        return on_tier_slots(value, self.num_tiers)

    def rewards(self, reward: np.ndarray, node_cost: np.ndarray) -> torch.Tensor:
        per_node = slot_rewards(reward, node_cost, self.reward_scale, node_credit=True)
        return on_tier_slots(per_node, self.num_tiers)  # (E, N * T + 1)

    def advantages(self, rollout: Rollout) -> Advantages:
        return node_credit_advantages(rollout, self.returns, self.coupling)

    def entropy_per_slot(self, entropy: float) -> float:
        return entropy


Credit = NodeCredit | JointCredit


def make_credit(config: TrainConfig, city: City, reward_scale: float, spill: float) -> Credit:
    """The credit ``config`` asks for, on ``city`` (``spill``: the scenario's monitoring spill)."""
    every_step = config.twin_baseline == "every_step"
    returns = Returns(config.gamma, config.gae_lambda, config.twins, every_step)
    num_tiers = config.model.num_tiers
    num_actions = city.num_nodes * num_tiers + 1
    if not config.node_credit:
        return JointCredit(returns, reward_scale, num_actions)
    coupling = None  # the budget coupling is off
    if config.budget_coupling and config.spill_credit:
        if num_tiers > 1:
            raise SimcityError(
                "spill credit reads one analytics tier",
                field="train.spill_credit",
                expected="false with [[compute.tiers]]",
            )
        coupling = Coupling(_sparse_neighbour_mean(city), spill)
    elif config.budget_coupling:
        coupling = Coupling(None, 0.0)
    return NodeCredit(returns, reward_scale, coupling, num_actions, num_tiers)


def on_tier_slots(per_node: torch.Tensor, num_tiers: int) -> torch.Tensor:
    """Per-node values (..., N + 1) repeated for each node's T tier slots (..., N * T + 1);
    ``per_node`` itself with one tier.

    >>> on_tier_slots(torch.tensor([1.0, 2.0, 9.0]), 2).tolist()
    [1.0, 1.0, 2.0, 2.0, 9.0]
    """
    if num_tiers == 1:
        return per_node
    nodes = per_node[..., :-1].repeat_interleave(num_tiers, dim=-1)  # (..., N * T)
    return torch.cat([nodes, per_node[..., -1:]], dim=-1)


def _sparse_neighbour_mean(city: City) -> torch.Tensor:
    """`simcity.monitoring.monitor.neighbour_mean` as a sparse (N, N) tensor."""
    n = city.num_nodes
    w = neighbour_mean(city).tocoo()
    index = torch.as_tensor(np.vstack([w.row, w.col]), dtype=torch.long)
    return torch.sparse_coo_tensor(
        index, torch.as_tensor(w.data, dtype=torch.float32), (n, n), check_invariants=True
    ).coalesce()
