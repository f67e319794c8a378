"""Small hand-made road networks for the traffic tests."""

from __future__ import annotations

import numpy as np

from simcity.city.network import Network


def make_network(
    links: list[tuple[int, int, float, float]],
    zones: list[int],
    *,
    num_nodes: int | None = None,
    b: float = 0.15,
    power: float = 4.0,
    through: list[bool] | None = None,
) -> Network:
    """A network from ``(tail, head, free_flow_time_min, capacity_veh_h)`` rows."""
    tail, head, t0, capacity = (np.array(column) for column in zip(*links, strict=True))
    n = num_nodes if num_nodes is not None else int(max(tail.max(), head.max())) + 1
    return Network(
        num_nodes=n,
        tail=tail.astype(np.int64),
        head=head.astype(np.int64),
        capacity_veh_h=capacity.astype(float),
        free_flow_time_min=t0.astype(float),
        bpr_b=np.full(len(links), b),
        bpr_power=np.full(len(links), power),
        zone_nodes=np.array(zones),
        through=np.ones(n, dtype=bool) if through is None else np.array(through),
    )
