"""The one protocol every policy follows, so evaluation never switches on a policy's type.

N nodes. A policy maps one `CityEnv` observation (``nodes`` (N, F), ``globals`` (G,)) to
N + 1 non-negative action weights: one per node, then the "unused" slot.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """Something that allocates a monitoring budget from what `CityEnv` observes."""

    name: str

    def reset(self, seed: int | None) -> None:
        """Start an episode; ``seed`` (the env's reset seed) fixes any randomness of its own."""
        ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action weights (N + 1,) for one observation; see `simcity.env` for their meaning."""
        ...
