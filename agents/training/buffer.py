"""`Rollout`: what one PPO rollout collected, step by step, for the advantages and the update.

Shapes: T rollout steps per env, E parallel envs, N nodes, F node features, G global
features, S action slots credited separately (N + 1 under per-node credit, 1 joint;
`agents.training.credit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Rollout:
    """One rollout of E envs over T steps; row ``t`` is one transition.

    Values are in money: the critic's outputs times the returns' std when it was collected.
    """

    obs_nodes: torch.Tensor  # (T, E, N, F)
    obs_globals: torch.Tensor  # (T, E, G)
    actions: torch.Tensor  # (T, E, N + 1) log-weights played
    mean_actions: torch.Tensor  # (T, E, N + 1) the logits they were drawn around
    log_std: torch.Tensor  # () the exploration log-std they were drawn with
    log_probs: torch.Tensor  # (T, E, S)
    rewards: torch.Tensor  # (T, E, S)
    values: torch.Tensor  # (T, E, S)
    dones: torch.Tensor  # (T, E) bool: the episode (a day) ended after step t
    starts: torch.Tensor  # (T, E) bool: step t is the first of a day
    next_value: torch.Tensor  # (E, S) value of the observation after step T - 1
    finished: tuple[float, ...]  # returns of the episodes that ended in this rollout

    @property
    def num_slots(self) -> int:
        return self.rewards.shape[-1]


@dataclass(frozen=True)
class Batch:
    """A rollout flattened to T * E samples for the update, values in the critic's units."""

    nodes: torch.Tensor  # (T * E, N, F)
    globals_: torch.Tensor  # (T * E, G)
    actions: torch.Tensor  # (T * E, N + 1)
    log_probs: torch.Tensor  # (T * E, S)
    values: torch.Tensor  # (T * E, S)
    advantages: torch.Tensor  # (T * E, S)
    returns: torch.Tensor  # (T * E, S)

    @classmethod
    def of(
        cls, rollout: Rollout, advantages: torch.Tensor, returns: torch.Tensor, std: float
    ) -> Batch:
        """Flatten ``rollout`` with its advantages and returns (T, E, S); divide values and
        returns (in money) by ``std``, the returns' std the critic now learns in."""
        return cls(
            nodes=rollout.obs_nodes.flatten(0, 1),
            globals_=rollout.obs_globals.flatten(0, 1),
            actions=rollout.actions.flatten(0, 1),
            log_probs=rollout.log_probs.flatten(0, 1),
            values=rollout.values.flatten(0, 1) / std,
            advantages=advantages.flatten(0, 1),
            returns=returns.flatten(0, 1) / std,
        )

    @property
    def size(self) -> int:
        return self.actions.shape[0]
