"""`Network`: the arrays of a road network that traffic assignment works on.

L links, N nodes, Z zones. A type of its own, below both the city graph that builds it
and the traffic that reads it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Network(NamedTuple):
    """The arrays assignment works on (see `simcity.city.graph.City.network`)."""

    num_nodes: int
    tail: np.ndarray  # (L,) int node index
    head: np.ndarray  # (L,) int node index
    capacity_veh_h: np.ndarray  # (L,)
    free_flow_time_min: np.ndarray  # (L,)
    bpr_b: np.ndarray  # (L,)
    bpr_power: np.ndarray  # (L,)
    zone_nodes: np.ndarray  # (Z,) node index of each zone, OD-matrix order
    through: np.ndarray  # (N,) bool; False: trips may not pass through this node
