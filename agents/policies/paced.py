"""Pacing a day's compute budget from the observation alone: how much of the units to use.

The ``paced`` and ``paced_carbon`` baselines (`agents.policies.baselines`) spread the
posterior heuristic's weights over the nodes and hold units back on the unused slot by
the share `Pacer.share` returns. It reads only the observation's globals: the share left
of the day's compute budget (``compute_budget_left``), the day's progress, the data
centre's grid intensity now and over the next three hours, and the node feature
``previous_allocation`` (the units the world actually applied last step, over the budget).

Rules, with ``L`` the budget share left, ``R`` the day's remaining steps (from the
progress and its step, seen after the first step):

- cost of units: after a step that used a share ``u`` of the units (> 1%), the budget
  left fell by ``L_prev - L``; the cost of using all units is estimated as
  ``(L_prev - L) / u`` (fixed costs, the fleet's idle and the policy's own decision, are
  put on the units: a cautious estimate); ``paced_carbon`` divides it by the intensity of
  that step, so it scales to the intensity now. The latest estimate is kept until a step
  uses units again.
- even (``paced``): spend ``L / R`` this step: use ``min(1, L / R / cost)`` of the units.
- carbon-aware (``paced_carbon``): spend ``L / R x I_ahead / I_now`` this step, ``I_ahead``
  the mean intensity of the next three hours: more where the grid is cleaner than what
  is coming, less where it is dirtier; it uses ``min(1, that / (cost_per_intensity x
  I_now))`` of the units.

Without a budget (the share left never falls below 1), before any estimate and after the
budget runs out of steps, the share is 1: the posterior heuristic exactly.
"""

from __future__ import annotations

import math

import numpy as np

from simcity.env import GLOBAL_FEATURES, NODE_FEATURES

_LEFT, _PROGRESS, _NOW, _AHEAD = (
    GLOBAL_FEATURES.index(name)
    for name in ("compute_budget_left", "day_progress", "carbon_now", "carbon_next_3h")
)
_PREVIOUS = NODE_FEATURES.index("previous_allocation")
MIN_USED_SHARE = 0.01
"""Steps that used less of the units than this do not update the cost estimate."""


class Pacer:
    """The share of the units to use this step under a day's budget (module doc)."""

    def __init__(self, carbon_aware: bool = False) -> None:
        self.carbon_aware = carbon_aware
        self.reset()

    def reset(self) -> None:
        """Forget the last day."""
        self._left: float | None = None  # budget share left at the last observation
        self._progress: float | None = None
        self._intensity = 0.0  # g/kWh / 1000 at the last step
        self._cost: float | None = None  # budget share per all units (per intensity)

    def share(self, obs: dict[str, np.ndarray]) -> float:
        """Share (0-1) of the units to use now; 1 without a budget."""
        globals_ = np.asarray(obs["globals"], dtype=np.float64)
        left, progress = float(globals_[_LEFT]), float(globals_[_PROGRESS])
        now, ahead = float(globals_[_NOW]), float(globals_[_AHEAD])
        used = float(np.asarray(obs["nodes"], dtype=np.float64)[:, _PREVIOUS].sum())
        last_left, last_progress = self._left, self._progress
        step = None if last_progress is None else progress - last_progress
        if last_left is not None and used > MIN_USED_SHARE and last_left > left:
            fall = (last_left - left) / used
            if self.carbon_aware:
                fall = fall / self._intensity if self._intensity > 0.0 else math.inf
            self._cost = fall
        self._left, self._progress, self._intensity = left, progress, now
        if left >= 1.0 or self._cost is None or step is None or step <= 0.0:
            return 1.0
        remaining = max(round((1.0 - progress) / step), 1)
        spend = left / remaining
        cost = self._cost
        if self.carbon_aware:
            if now <= 0.0:
                return 1.0
            spend *= ahead / now
            cost *= now
        if cost <= 0.0 or not math.isfinite(cost):
            return 1.0 if cost <= 0.0 else 0.0
        return float(min(1.0, max(spend / cost, 0.0)))


def paced_action(action: np.ndarray, share: float) -> np.ndarray:
    """``action`` (N + 1,) with only ``share`` of what it gives the nodes still given:
    the rest joins the unused slot; ``action`` itself when ``share`` is 1.

    >>> paced_action(np.array([1.0, 3.0, 0.0]), 0.25).tolist()
    [0.0625, 0.1875, 0.75]
    >>> paced_action(np.array([1.0, 1.0, 2.0]), 0.5).tolist()  # half held back already
    [0.125, 0.125, 0.75]
    """
    if share >= 1.0:
        return action
    action = np.asarray(action, dtype=np.float64)
    total = float(action.sum())
    if share <= 0.0 or not total > 0.0:
        return np.append(np.zeros(len(action) - 1), 1.0)
    nodes = action[:-1] / total * share
    return np.append(nodes, action[-1] / total * share + (1.0 - share))
