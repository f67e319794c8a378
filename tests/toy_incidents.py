"""Hand-made incident tables for the tests of the env and of the policies."""

from __future__ import annotations

import numpy as np

from simcity.monitoring import incidents as inc


def overloads_at(node: int, count: int, now: float, marker: float) -> inc.Incidents:
    """``count`` grid overloads at ``node`` that stay open all day; ``marker`` as severity."""
    return inc.Incidents(
        kind=np.full(count, inc.GRID_OVERLOAD),
        node=np.full(count, node),
        link=np.full(count, -1),
        severity=np.full(count, marker),
        start_min=np.full(count, now),
        end_min=np.full(count, 1e6),
        damage_per_min=np.full(count, 50.0),
        detected_min=np.full(count, np.nan),
        damage=np.zeros(count),
        clock=np.random.default_rng([node, count]).exponential(1.0, size=count),
    )
