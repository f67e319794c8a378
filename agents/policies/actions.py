"""Helpers every allocation rule shares: weights on the nodes as an action, the random kinds.

N nodes, K = 3 incident kinds that arrive at random (accident, pollution, grid overload).
"""

from __future__ import annotations

import numpy as np

from simcity.monitoring import incidents as inc

RANDOM_KINDS = np.array([inc.ACCIDENT, inc.POLLUTION, inc.GRID_OVERLOAD])  # (K,)
"""The incident kinds that arrive at random (scheduled ones are announced)."""


def on_nodes(weights: np.ndarray) -> np.ndarray:
    """Action (N + 1,) with ``weights`` (N,) on the nodes, equal weights if they are all 0.

    >>> on_nodes(np.array([1.0, -2.0, np.nan])).tolist()
    [1.0, 0.0, 0.0, 0.0]
    >>> on_nodes(np.zeros(2)).tolist()
    [1.0, 1.0, 0.0]
    """
    weights = np.where(np.isfinite(weights), np.maximum(weights, 0.0), 0.0)
    if not weights.sum() > 0.0:
        weights = np.ones_like(weights)
    return np.append(weights, 0.0)
