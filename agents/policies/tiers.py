"""The baselines' tier rule: node weights all on the first analytics tier.

N nodes, T analytics tiers (``[[compute.tiers]]``). With tiers the env's action is
N * T + 1 weights, node-major (`simcity.env`). The heuristics weigh nodes, not models, so
on such an env they put each node's weight on the first tier, which scenarios list as the
lightest (the default detector): the allocation of a scenario without tiers, unit for unit
of capacity, and nothing on the heavier tiers. The unused slot keeps its weight.
"""

from __future__ import annotations

import numpy as np

from agents.policies.protocol import Policy
from simcity.config.scenario import Scenario
from simcity.errors import SimcityError


def on_first_tier(action: np.ndarray, num_tiers: int) -> np.ndarray:
    """Action (N * T + 1,) with the node weights of ``action`` (N + 1,) on tier 0.

    >>> on_first_tier(np.array([1.0, 2.0, 0.5]), 2).tolist()
    [1.0, 0.0, 2.0, 0.0, 0.5]
    """
    action = np.asarray(action, dtype=np.float64)
    nodes = np.zeros((len(action) - 1, num_tiers))  # (N, T)
    nodes[:, 0] = action[:-1]
    return np.append(nodes.ravel(), action[-1])


class FirstTierPolicy:
    """A node-weighing policy on an env with T analytics tiers, by the tier rule above."""

    def __init__(self, policy: Policy, num_tiers: int) -> None:
        self.policy = policy
        self.num_tiers = num_tiers
        self.name = policy.name

    @property
    def flops_per_decision(self) -> float:
        return self.policy.flops_per_decision

    def reset(self, seed: int | None) -> None:
        self.policy.reset(seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The wrapped policy's weights (N + 1,), on the first tier (N * T + 1,)."""
        return on_first_tier(self.policy.act(obs), self.num_tiers)


def require_one_tier(scenario: Scenario) -> None:
    """`SimcityError` for a scenario with analytics tiers: the attention policy outputs
    N + 1 weights, one tier's (T logits per node are not built yet)."""
    if scenario.compute.num_tiers > 1:
        raise SimcityError(
            f"{scenario.compute.num_tiers} analytics tiers: the attention policy allocates one",
            field="compute.tiers",
            expected="a scenario without [[compute.tiers]] for a trained policy",
        )
