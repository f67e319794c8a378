"""The one protocol every policy follows, so evaluation never switches on a policy's type.

N nodes. A policy maps one `CityEnv` observation (``nodes`` (N, F), ``globals`` (G,)) to
N + 1 non-negative action weights: one per node, then the "unused" slot. It also says what
one decision costs in FLOPs, so whoever plays it (`agents.training.evaluate.run_episode`)
bills it without asking what kind of policy it is.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """Something that allocates a monitoring budget from what `CityEnv` observes."""

    name: str

    @property
    def flops_per_decision(self) -> float:
        """FLOPs (or FLOP-equivalents, for int8 ops) of one `act`, billed by the env; 0 for
        heuristics, whose arithmetic is negligible beside a network's. A plain attribute
        does."""
        ...

    def reset(self, seed: int | None) -> None:
        """Start an episode; ``seed`` (the env's reset seed) fixes any randomness of its own."""
        ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action weights (N + 1,) for one observation; see `simcity.env` for their meaning."""
        ...
