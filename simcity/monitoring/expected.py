"""Expected incident rates from estimated quantities, under the scenario's own gains.

What a policy that sees only estimates (congestion, load ratio, emissions ratio per node)
can say about where incidents arrive: the shape over the nodes of each kind's rate, as
`simcity.monitoring.truth` computes the true rates from the true quantities with the same
`simcity.config.monitoring.IncidentConfig`. N nodes, K = 3 kinds that arrive at random
(accident, pollution, grid overload: the first three of
`simcity.monitoring.incidents.INCIDENT_TYPES`).
"""

from __future__ import annotations

import numpy as np

from simcity.config.monitoring import IncidentConfig
from simcity.monitoring.incidents import EMISSIONS_RATIO_CAP, LOAD_RATIO_CAP


def expected_rates(
    congestion: np.ndarray,
    load_ratio: np.ndarray,
    emissions_ratio: np.ndarray,
    incidents: IncidentConfig,
) -> np.ndarray:
    """Relative expected rates (..., N, K) of accidents, pollution episodes and overloads.

    Each kind is known up to its own constant factor (the per-kind base rates cancel in
    any comparison across nodes), from per-node estimates of any batch shape (..., N):

    - accident: exposure times the congestion factor, ``c (1 + congestion_gain c^2)``,
      traffic flow growing with the congestion ``c`` (mean v/c of the node's in-links);
    - pollution: ``min(e, 3)^2`` of the emissions ratio ``e``;
    - grid overload: ``exp(overload_gain (min(l, 1.5) - 1))`` of the load ratio ``l``.

    >>> rates = expected_rates(np.array([0.0, 1.0]), np.array([1.0, 2.0]),
    ...                        np.array([1.0, 4.0]), IncidentConfig())
    >>> rates.round(3).tolist()
    [[0.0, 1.0, 1.0], [3.0, 9.0, 54.598]]
    """
    accident = congestion * (1.0 + incidents.congestion_gain * congestion**2)
    pollution = np.minimum(emissions_ratio, EMISSIONS_RATIO_CAP) ** 2
    overload = np.exp(incidents.overload_gain * (np.minimum(load_ratio, LOAD_RATIO_CAP) - 1.0))
    return np.stack([accident, pollution, overload], axis=-1)
