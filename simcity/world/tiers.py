"""Analytics tiers in the world: units per (node, tier) as capacity, under a compute budget.

N nodes, T analytics tiers (``[[compute.tiers]]``). Capacity is what a compute budget and
the bill see: a unit of tier t takes ``tier_cost[t]`` units of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from simcity.compute.bill import ComputeBill
from simcity.compute.budget import BudgetState, DayBudget, cap_allocation


class TierCap(NamedTuple):
    """An interval's allocation after a compute budget has had its say."""

    allocation: np.ndarray  # (N,) capacity per node
    tier_units: np.ndarray | None  # (N, T) units per tier; None without tiers
    fleet_on: bool


def capped(
    budget: DayBudget,
    state: BudgetState,
    step: int,
    allocation: np.ndarray,
    tier_units: np.ndarray | None,
    tier_cost: tuple[float, ...],
    bill_of: Callable[[float, bool], ComputeBill],
) -> TierCap:
    """`cap_allocation` of ``allocation`` (N,), or of the tiers' capacity (N, T): each
    tier scaled by the one share that fits, ``allocation`` its capacity summed per node.

    """
    if tier_units is None:
        cap = cap_allocation(budget, state, step, allocation, bill_of)
        return TierCap(cap.allocation, None, cap.fleet_on)
    cost = np.asarray(tier_cost, dtype=np.float64)
    capacity = tier_units * cost
    cap = cap_allocation(budget, state, step, capacity, bill_of)
    if cap.allocation is capacity:
        return TierCap(allocation, tier_units, cap.fleet_on)
    return TierCap(cap.allocation.sum(axis=1), cap.allocation / cost, cap.fleet_on)


def tier_capacity(tier_units: np.ndarray, tier_cost: tuple[float, ...]) -> np.ndarray:
    """(N,) capacity of units per (node, tier) (N, T): ``sum_t units_t * tier_cost_t``.

    >>> tier_capacity(np.array([[1.0, 2.0], [0.0, 0.5]]), (1.0, 10.0)).tolist()
    [21.0, 5.0]
    """
    return (tier_units * np.asarray(tier_cost, dtype=np.float64)).sum(axis=1)
