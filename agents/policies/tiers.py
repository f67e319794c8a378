"""The tier rule: node weights on the analytics tier that sees most per unit of capacity.

N nodes, T analytics tiers (``[[compute.tiers]]``). With tiers the env's action is
N * T + 1 weights, node-major (`simcity.env`). The heuristics weigh nodes, not models, so
on such an env they put each node's weight on one tier: the one whose detection gain per
unit of GPU capacity, ``hazard_gain / tier_cost``, is highest (ties: the earlier tier,
which scenarios list lighter). The hazard is linear in the gain-weighted units
(`simcity.monitoring.monitor.effective_units`), so under one shared capacity that tier
finds the most incidents for it at every node. On ``downtown_vlm`` it is the detector
(1 per unit of capacity, against the VLM's 3 / 12.5 = 0.24): the allocation of a scenario
without tiers, unit for unit of capacity. The unused slot keeps its weight.

The attention policy learns the split itself (T logits per node); its teacher's labels put
each node's share on the same tier and `TIER_FLOOR` of it on each other tier, so PPO
starts from the rule and can still try the others.
"""

from __future__ import annotations

import numpy as np

from agents.policies.protocol import Policy
from simcity.config.scenario import Scenario
from simcity.errors import SimcityError

TIER_FLOOR = 0.05
"""Share of a node's weight the teacher's labels give each tier other than the rule's."""


def best_tier(scenario: Scenario) -> int:
    """Index of the tier with the highest ``hazard_gain / tier_cost`` (0 without tiers)."""
    tiers = scenario.compute.tiers
    if not tiers:
        return 0
    costs = scenario.compute.tier_cost
    value = [t.hazard_gain / cost for t, cost in zip(tiers, costs, strict=True)]
    return int(np.argmax(value))


def on_tier(action: np.ndarray, num_tiers: int, tier: int = 0, floor: float = 0.0) -> np.ndarray:
    """Action (N * T + 1,) with the node weights of ``action`` (N + 1,) on ``tier``, and
    ``floor`` times each node's weight on every other tier.

    >>> on_tier(np.array([1.0, 2.0, 0.5]), 2).tolist()
    [1.0, 0.0, 2.0, 0.0, 0.5]
    >>> on_tier(np.array([1.0, 2.0, 0.5]), 2, tier=1, floor=0.5).tolist()
    [0.5, 1.0, 1.0, 2.0, 0.5]
    """
    action = np.asarray(action, dtype=np.float64)
    weights = action[:-1, None]  # (N, 1)
    nodes = np.repeat(weights * floor, num_tiers, axis=1)  # (N, T)
    nodes[:, tier] = action[:-1]
    return np.append(nodes.ravel(), action[-1])


class TierRulePolicy:
    """A node-weighing policy on an env with T analytics tiers, by the tier rule above."""

    def __init__(self, policy: Policy, scenario: Scenario) -> None:
        self.policy = policy
        self.num_tiers = scenario.compute.num_tiers
        self.tier = best_tier(scenario)
        self.name = policy.name

    @property
    def flops_per_decision(self) -> float:
        return self.policy.flops_per_decision

    def reset(self, seed: int | None) -> None:
        self.policy.reset(seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The wrapped policy's weights (N + 1,), on the rule's tier (N * T + 1,)."""
        return on_tier(self.policy.act(obs), self.num_tiers, self.tier)


def require_one_tier(scenario: Scenario, what: str) -> None:
    """`SimcityError` naming ``what`` for a scenario with analytics tiers."""
    if scenario.compute.num_tiers > 1:
        raise SimcityError(
            f"{scenario.compute.num_tiers} analytics tiers: {what} reads one",
            field="compute.tiers",
            expected="a scenario without [[compute.tiers]]",
        )
