"""The math of the classical baselines: optimal search by water-filling, Whittle indices.

Pure functions over NumPy arrays, N nodes; `agents.policies.classical` feeds them the
belief and plays them as policies.

Optimal search (Koopman; Stone, "Theory of Optimal Search", 1975, ch. 2): spread ``B``
units of effort over nodes where a target of value ``w_i`` is found at hazard ``a_i`` per
unit for ``dt``::

    maximise sum_i w_i (1 - exp(-a_i x_i dt))   subject to   sum_i x_i <= B,  x_i >= 0.

The objective is concave and separable; the Lagrangian's stationarity gives
``w_i a_i dt exp(-a_i x_i dt) = lambda`` where ``x_i > 0``, so
``x_i = max(0, ln(w_i a_i dt / lambda) / (a_i dt))`` (`effort_at`): effort flows to the
nodes whose first unit is worth more than the shadow price ``lambda`` of a unit, each up to
where its marginal gain falls to ``lambda`` (water-filling). ``lambda`` comes by bisection
on its logarithm to spend the budget (`water_fill`), then exactly from the active set (the
closed form of the sum over it), so the effort sums to ``B`` to rounding. A unit is spent
only where its marginal gain beats ``price`` (what it costs to run): with ``lambda`` below
the price the solution is the one at ``lambda = price``, and the rest of the budget stays
unused.

Whittle index (Whittle 1988; the collapsing-bandit view of Mate et al., NeurIPS 2020:
unwatched beliefs drift up, watching pulls them down): a node's belief ``u`` (minutes of
unwatched time, expected undetected incidents per unit arrival rate) follows
``du/dt = 1 - (k0 + a x) u``. Under a threshold rule (watch while ``u`` is above ``theta``)
``u`` rests at ``theta`` with the node watched a share ``rho = (1/theta - k0) / a`` of the
time, detecting ``a rho r theta`` incidents a minute worth ``v`` each. With a subsidy
``lambda`` a minute for resting, the long-run reward ``v r (1 - k0 theta) - lambda rho`` is
best at ``theta`` where ``lambda = v r a k0 theta^2``: the index of belief ``u`` is

    W(u) = a k0 u (v r u) = a (k0 u) w,

``w = v r u`` the expected value of the node's undetected incidents. It rises with ``u``
(the node is indexable). It is the fluid (fine time step) limit of the discrete chain.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BISECTION_STEPS = 200
"""Most halvings of the bracket of ln(lambda) in `water_fill`; it stops sooner once the
bracket is two neighbouring floats."""


def effort_at(
    weights: np.ndarray, rates_per_min: np.ndarray, dt_min: float, lam: float
) -> np.ndarray:
    """Effort per node (N,) at shadow price ``lam`` > 0: ``max(0, ln(w a dt / lam) / (a dt))``.

    0 where ``w a`` is 0 (no value, or no way to find it).

    >>> effort_at(np.array([1.0, 4.0]), np.array([1.0, 0.5]), 1.0, 0.5).round(6).tolist()
    [0.693147, 2.772589]
    """
    return _effort(weights * rates_per_min * dt_min, rates_per_min * dt_min, float(np.log(lam)))


def _effort(gain: np.ndarray, rate_dt: np.ndarray, log_lam: float) -> np.ndarray:
    """`effort_at` from the first units' gains ``w a dt``, ``a dt`` and ``ln(lam)``."""
    active = gain > 0.0
    log_gain = np.log(np.where(active, gain, 1.0))
    effort = (log_gain - log_lam) / np.where(active, rate_dt, 1.0)
    return np.where(active & (log_gain > log_lam), effort, 0.0)


def search_value(
    weights: np.ndarray, rates_per_min: np.ndarray, dt_min: float, effort: np.ndarray
) -> float:
    """The objective ``sum_i w_i (1 - exp(-a_i x_i dt))``.

    >>> round(search_value(np.array([2.0]), np.array([1.0]), 1.0, np.array([np.log(2)])), 9)
    1.0
    """
    return float((weights * -np.expm1(-rates_per_min * effort * dt_min)).sum())


class WaterFill(NamedTuple):
    """An optimal search allocation and its shadow price."""

    effort: np.ndarray  # (N,) units per node
    lam: float  # marginal gain of the last unit spent (the shadow price of a unit)
    """0 where no node can gain anything."""


def water_fill(
    weights: np.ndarray,
    rates_per_min: np.ndarray,
    budget: float,
    dt_min: float,
    price: float = 0.0,
) -> WaterFill:
    """Koopman's optimal search allocation of ``budget`` (module doc), units that gain less
    than ``price`` each left unused.

    Two nodes of value 1 and 4 found at 1 and 0.5 a minute per unit, 2 units for a minute:
    both active, ``x_1 + x_2 = 2`` with ``ln(1 / lam) = x_1`` and ``ln(2 / lam) = x_2 / 2``
    give ``lam = 2^(2/3) e^(-2/3)``, ``x_1 = 2/3 - (2/3) ln 2``.

    >>> fill = water_fill(np.array([1.0, 4.0]), np.array([1.0, 0.5]), 2.0, 1.0)
    >>> fill.effort.round(6).tolist(), round(fill.lam, 6)
    ([0.204569, 1.795431], 0.814999)
    """
    weights = np.asarray(weights, dtype=np.float64)
    rates_per_min = np.asarray(rates_per_min, dtype=np.float64)
    gain = weights * rates_per_min * dt_min  # (N,)
    useful = np.isfinite(gain) & (gain > 0.0)
    if budget <= 0.0 or not useful.any():
        return WaterFill(np.zeros_like(weights), 0.0)
    top = float(gain[useful].max())
    if price >= top:
        return WaterFill(np.zeros_like(weights), price)
    # At ln(lam) = high nothing is spent; at low the best node alone takes the budget.
    best = int(np.flatnonzero(useful)[np.argmax(gain[useful])])
    high = np.log(top)
    low = high - budget * rates_per_min[best] * dt_min - 1.0
    rate_dt = rates_per_min * dt_min
    log_gain, span = np.log(gain[useful]), 1.0 / rate_dt[useful]  # the useful nodes (M,)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (low + high)
        if mid in (low, high):  # the bracket is two neighbouring floats
            break
        if (np.maximum(log_gain - mid, 0.0) * span).sum() > budget:
            low = mid
        else:
            high = mid
    # Exact on the active set: sum_A (ln g_i - ln lam) / (a_i dt) = budget.
    active = log_gain > low
    log_lam = float((log_gain[active] * span[active]).sum() - budget) / float(span[active].sum())
    if price > 0.0 and log_lam < np.log(price):  # such units cost more than they find
        return WaterFill(_effort(gain, rate_dt, float(np.log(price))), price)
    return WaterFill(_effort(gain, rate_dt, log_lam), float(np.exp(log_lam)))


def whittle_index(
    value: np.ndarray,
    rates_per_min: np.ndarray,
    rest_hazard_per_min: np.ndarray,
    unwatched_min: np.ndarray,
) -> np.ndarray:
    """Whittle index (N,) per minute of a unit: ``a (k0 u) w`` (module doc).

    ``value`` is ``w``, the expected value of the node's undetected incidents; ``rates`` is
    ``a``, the hazard a unit adds; ``k0`` the hazard at rest (detection and closing without
    units) and ``u`` the unwatched belief (minutes; ``k0 u`` in (0, 1]).

    >>> w, a, k0, u = np.array([10.0]), np.array([0.2]), np.array([0.05]), np.array([10.0])
    >>> whittle_index(w, a, k0, u).round(12).tolist()
    [1.0]
    """
    return rates_per_min * rest_hazard_per_min * unwatched_min * value


def fill_by_index(index: np.ndarray, budget: float, cap: float, floor: float = 0.0) -> np.ndarray:
    """Units per node (N,): the budget in index order, at most ``cap`` a node per round.

    Nodes whose index is above ``floor`` are ranked from the highest index; each round gives
    ``cap`` to each in rank order until the budget runs out (the last one gets the
    fraction left); the next round starts again from the top. Nodes at or below ``floor``
    get nothing, so the budget may be left unused. Ties go to the lower node number.

    >>> fill_by_index(np.array([3.0, 1.0, 2.0, 0.0]), 2.5, 1.0).tolist()
    [1.0, 0.5, 1.0, 0.0]
    >>> fill_by_index(np.array([3.0, 1.0, 2.0, 0.0]), 4.0, 1.0).tolist()
    [2.0, 1.0, 1.0, 0.0]
    """
    index = np.asarray(index, dtype=np.float64)
    units = np.zeros_like(index)
    eligible = np.flatnonzero(np.isfinite(index) & (index > floor))
    if budget <= 0.0 or cap <= 0.0 or len(eligible) == 0:
        return units
    order = eligible[np.argsort(-index[eligible], kind="stable")]  # (M,)
    per_round = cap * len(order)
    rounds = np.floor(budget / per_round)
    rest = budget - rounds * per_round
    rank = np.arange(len(order))
    units[order] = cap * rounds + np.clip(rest - cap * rank, 0.0, cap)
    return units
