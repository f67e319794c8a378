"""Travel delay that accidents add, and where it lands: the reward's delay term.

L links, N nodes. An interval's incident delay is its total travel time less that of the
same interval without accidents (`TrafficSnapshot.reference`: the equilibrium under the
external cuts alone), in vehicle-hours over the interval, never below 0:

    delay_veh_h = max(0, sum_l x_l t_l - sum_l x0_l t0_l) [veh·min/h] * dt_min / 3600

with x, t the interval's flows and times (undetected accidents slow their links, detected
ones re-route the flows) and x0, t0 the reference's. It is the congestion the incidents
cause, not the day's recurring congestion, which no monitoring changes (delay relative to
free flow would add that as a large term no allocation moves). So an undetected accident
on a loaded link costs its full slowdown, and detecting it costs only what remains after
drivers re-route. The floor at 0 drops what re-routing could recover beyond the
incident-free day (a looser re-solve's error, or Braess's paradox), never a cost.
"""

from __future__ import annotations

import numpy as np

from simcity.traffic.day import TrafficSnapshot


def link_excess_veh_min_h(snapshot: TrafficSnapshot) -> np.ndarray:
    """(L,) each link's travel time beyond the reference's, veh·min per hour."""
    now, ref = snapshot.assignment, snapshot.reference
    if now is ref:
        return np.zeros(len(now.flows_veh_h))
    return now.flows_veh_h * now.times_min - ref.flows_veh_h * ref.times_min


def incident_delay_veh_h(snapshot: TrafficSnapshot, dt_min: float) -> float:
    """Vehicle-hours of delay accidents add over an interval of ``dt_min`` minutes.

    >>> from simcity.traffic.assignment import Assignment
    >>> ref = Assignment(np.array([600.0]), np.array([10.0]), 0.0, 1, 6000.0, True)
    >>> now = ref._replace(times_min=np.array([14.0]))  # an undetected cut: 4 min more
    >>> snap = TrafficSnapshot(np.zeros((1, 1)), now, np.ones(1), ref, np.array([0]))
    >>> incident_delay_veh_h(snap, 15.0)  # 600 veh/h x 4 min for a quarter hour
    10.0
    """
    now, ref = snapshot.assignment, snapshot.reference
    if now is ref:
        return 0.0
    extra = float(now.flows_veh_h @ now.times_min) - float(ref.flows_veh_h @ ref.times_min)
    return max(extra, 0.0) * dt_min / 3600.0


def delay_shares(snapshot: TrafficSnapshot, link_head: np.ndarray, num_nodes: int) -> np.ndarray:
    """(N,) shares (summing to 1, or all 0 without delay) of the delay by the node at fault.

    An accident sits at the head node of the link it cuts; the delay goes to those nodes
    in proportion to the extra travel time on each cut link itself (detours elsewhere are
    the cut's doing too, so they follow it). Where no cut link carries extra time (flow all
    re-routed) the cut links share it equally; where no link is cut this interval (routes
    kept from an accident cleared since, on a coarse traffic clock), it follows every
    link's extra time.
    """
    excess = np.maximum(link_excess_veh_min_h(snapshot), 0.0)  # (L,)
    cut = snapshot.cut_links
    if cut.size:
        weight = excess[cut] if excess[cut].sum() > 0 else np.ones(cut.size)
        by_node = np.bincount(link_head[cut], weights=weight, minlength=num_nodes)
    else:
        by_node = np.bincount(link_head, weights=excess, minlength=num_nodes)
    total = by_node.sum()
    return by_node / total if total > 0 else np.zeros(num_nodes)
