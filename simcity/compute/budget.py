"""A day's compute budget: carbon (kg CO2) and/or energy (kWh) the compute may spend.

``[compute] carbon_budget_kg_per_day`` and ``energy_budget_kwh_per_day`` cap what the
analytics and the policy's decisions spend, at facility level, per *window*: 24 simulated
hours from the start of the episode (an episode, or its last window, shorter than a day
gets the day's budget in proportion to its length). The world calls `cap_allocation`
before monitoring every step: the step's allocation is scaled by the largest share
``s`` in [0, 1] whose bill (analytics of ``s x`` the units, the fleet's idle, the policy's
decision) fits what is left of the window's budget minus a *reserve*: what the policy's
own decisions will emit on the window's remaining steps (they are made whatever the
budget). If even ``s = 0`` does not fit (GPUs kept on by ``min_gpus``), the analytics
fleet is switched off for the step. The bill is monotone in the units, so ``s`` is found
by bisection, and only when the full allocation does not fit.

`day_budget` refuses, with a `SimcityError`, a budget that the policy's decisions alone
would exceed. Spending is a `BudgetState` the world keeps; `spend` adds a step's bill.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from simcity.compute.bill import ComputeBill
from simcity.config.monitoring import ComputeConfig
from simcity.errors import SimcityError

_MIN_PER_DAY = 1440.0
_RESERVE_SLACK = 1e-9
"""Relative margin on the policy's reserve, so floating-point rounding never leaves a
later decision without room."""
_BISECTIONS = 40


class DayBudget(NamedTuple):
    """An episode's compute budgets, fixed at reset (inf: no budget of that kind)."""

    carbon_g_per_day: float
    energy_kwh_per_day: float
    window_steps: int  # steps in a full window (a day, or the whole shorter episode)
    dt_min: float
    num_steps: int
    policy_carbon_g: np.ndarray  # (T,) what one decision emits at each step
    policy_kwh: float  # facility energy of one decision

    @property
    def active(self) -> bool:
        return math.isfinite(self.carbon_g_per_day) or math.isfinite(self.energy_kwh_per_day)

    def window(self, step: int) -> tuple[int, int]:
        """First step and end (exclusive) of the window holding ``step``."""
        start = step // self.window_steps * self.window_steps
        return start, min(start + self.window_steps, self.num_steps)

    def limits(self, step: int) -> tuple[float, float]:
        """The window's carbon (g) and energy (kWh) budgets at ``step``."""
        start, end = self.window(step)
        share = (end - start) * self.dt_min / _MIN_PER_DAY
        return self.carbon_g_per_day * share, self.energy_kwh_per_day * share


class BudgetState(NamedTuple):
    """What the compute spent in the current window."""

    window_start: int = 0
    carbon_g: float = 0.0
    energy_kwh: float = 0.0


class StepCap(NamedTuple):
    """`cap_allocation`'s answer: the allocation that fits and whether the fleet stays on."""

    allocation: np.ndarray  # (N,) the requested allocation times the share that fits
    fleet_on: bool


NO_BUDGET_LEFT = 0.0
"""The budget left (kg, kWh) reported without a budget of that kind: records stay finite
and non-negative; the share left (`budget_left_share`) is 1 then."""


def day_budget(
    compute: ComputeConfig,
    *,
    dt_min: float,
    num_steps: int,
    policy_carbon_g: np.ndarray,
    policy_kwh: float,
) -> DayBudget:
    """The episode's budgets from ``compute``; `SimcityError` if the policy's decisions
    alone (``policy_carbon_g`` (T,) per step, ``policy_kwh`` per decision) exceed one."""
    carbon = compute.carbon_budget_kg_per_day
    energy = compute.energy_budget_kwh_per_day
    budget = DayBudget(
        math.inf if carbon is None else carbon * 1000.0,
        math.inf if energy is None else float(energy),
        min(num_steps, max(round(_MIN_PER_DAY / dt_min), 1)),
        dt_min,
        num_steps,
        policy_carbon_g,
        policy_kwh,
    )
    for start in range(0, num_steps, budget.window_steps):
        end = budget.window(start)[1]
        carbon_g, energy_kwh = budget.limits(start)
        need_g = float(policy_carbon_g[start:end].sum())
        if need_g > carbon_g:
            raise SimcityError(
                f"is {carbon_g / 1000 / ((end - start) * dt_min / _MIN_PER_DAY):g} kg a day, "
                f"but the policy's decisions alone emit {need_g / 1000:g} kg in steps "
                f"{start}-{end - 1}",
                field="compute.carbon_budget_kg_per_day",
                expected="a budget that covers at least the policy's own decisions",
            )
        if policy_kwh * (end - start) > energy_kwh:
            raise SimcityError(
                f"is {energy}, but the policy's decisions alone use "
                f"{policy_kwh * (end - start):g} kWh in steps {start}-{end - 1}",
                field="compute.energy_budget_kwh_per_day",
                expected="a budget that covers at least the policy's own decisions",
            )
    return budget


def current(budget: DayBudget, state: BudgetState, step: int) -> BudgetState:
    """``state`` at ``step``: nothing spent yet if ``step`` opens a new window."""
    start = budget.window(step)[0]
    return state if state.window_start == start else BudgetState(start)


def _room(budget: DayBudget, state: BudgetState, step: int) -> tuple[float, float]:
    """What the step may spend at most: the window's budget minus the reserve for the
    policy's decisions on its later steps (carbon g, energy kWh)."""
    end = budget.window(step)[1]
    carbon_g, energy_kwh = budget.limits(step)
    slack = 1.0 + _RESERVE_SLACK
    reserve_g = float(budget.policy_carbon_g[step + 1 : end].sum()) * slack
    reserve_kwh = budget.policy_kwh * (end - step - 1) * slack
    return carbon_g - reserve_g, energy_kwh - reserve_kwh


def cap_allocation(
    budget: DayBudget,
    state: BudgetState,
    step: int,
    allocation: np.ndarray,
    bill_of: Callable[[float, bool], ComputeBill],
) -> StepCap:
    """The largest share of ``allocation`` (N,) whose bill fits the budget left (module doc).

    ``bill_of(units, fleet_on)`` bills the step (`simcity.compute.bill.bill_compute`);
    the units billed are those of the returned allocation, summed the same way, so the
    bill monitoring makes of it is the one checked here.
    """
    if not budget.active:
        return StepCap(allocation, True)
    state = current(budget, state, step)
    room_g, room_kwh = _room(budget, state, step)

    def fits(units: np.ndarray, fleet_on: bool = True) -> bool:
        bill = bill_of(float(units.sum()), fleet_on)
        return (
            state.carbon_g + bill.carbon_g <= room_g
            and state.energy_kwh + bill.facility_energy_kwh <= room_kwh
        )

    if fits(allocation):
        return StepCap(allocation, True)
    none = np.zeros_like(allocation)
    if not fits(none):
        return StepCap(none, False)
    low, high = 0.0, 1.0
    for _ in range(_BISECTIONS):
        mid = 0.5 * (low + high)
        if fits(allocation * mid):
            low = mid
        else:
            high = mid
    return StepCap(allocation * low, True)


def spend(budget: DayBudget, state: BudgetState, step: int, bill: ComputeBill) -> BudgetState:
    """``state`` after ``step``'s bill."""
    state = current(budget, state, step)
    return BudgetState(
        state.window_start,
        state.carbon_g + bill.carbon_g,
        state.energy_kwh + bill.facility_energy_kwh,
    )


def budget_left(budget: DayBudget, state: BudgetState, step: int) -> tuple[float, float]:
    """Carbon (kg) and energy (kWh) left in the window of ``step`` after ``state``'s
    spending; `NO_BUDGET_LEFT` for a kind without a budget."""
    state = current(budget, state, step)
    carbon_g, energy_kwh = budget.limits(step)
    return (
        (carbon_g - state.carbon_g) / 1000.0 if math.isfinite(carbon_g) else NO_BUDGET_LEFT,
        energy_kwh - state.energy_kwh if math.isfinite(energy_kwh) else NO_BUDGET_LEFT,
    )


def budget_left_share(budget: DayBudget, state: BudgetState, step: int) -> float:
    """The smaller share left of the window's budgets at ``step`` (the last step's window
    after the episode), 0 to 1 (1 without a budget, 0 for a zero one): what the
    observation shows."""
    if not budget.active:
        return 1.0
    step = min(step, budget.num_steps - 1)
    state = current(budget, state, step)
    carbon_g, energy_kwh = budget.limits(step)
    shares = [1.0]
    for limit, spent in ((carbon_g, state.carbon_g), (energy_kwh, state.energy_kwh)):
        if math.isfinite(limit):
            shares.append((limit - spent) / limit if limit > 0.0 else 0.0)
    return min(max(min(shares), 0.0), 1.0)
