"""Frank–Wolfe's parts: BPR link times and slopes, the exact line search, the directions.

L links. Used by `simcity.traffic.assignment.assign`; pure NumPy, no state beyond a
direction's history.
"""

from __future__ import annotations

import numpy as np

from simcity.city.network import Network


class BprLinks:
    """BPR times and slopes for fixed link parameters: ``t = t0 + t0 * b * (v / c) ** p``."""

    def __init__(self, network: Network, capacity_veh_h: np.ndarray) -> None:
        self.t0_min = np.asarray(network.free_flow_time_min, dtype=float)  # (L,)
        self.inv_capacity_h_veh = 1.0 / capacity_veh_h  # (L,)
        self.power = np.asarray(network.bpr_power, dtype=float)  # (L,)
        self.scale_min = self.t0_min * network.bpr_b  # (L,) t0 * b
        self.quartic = bool(np.all(self.power == 4.0))

    def time(self, flows_veh_h: np.ndarray) -> np.ndarray:
        """Link times (min) at ``flows_veh_h``."""
        ratio = flows_veh_h * self.inv_capacity_h_veh
        if self.quartic:
            ratio *= ratio
            ratio *= ratio
        else:
            ratio **= self.power
        return self.t0_min + self.scale_min * ratio

    def objective(self, flows_veh_h: np.ndarray) -> float:
        """Beckmann's objective: the sum over links of the integral of time over flow."""
        ratio = flows_veh_h * self.inv_capacity_h_veh
        if self.quartic:
            powered = ratio * ratio
            powered *= powered
        else:
            powered = ratio**self.power
        integral = self.t0_min + self.scale_min * powered / (self.power + 1.0)
        return float(flows_veh_h @ integral)

    def slope(self, flows_veh_h: np.ndarray) -> np.ndarray:
        """d(time)/d(flow) (min per veh/h) at ``flows_veh_h``."""
        ratio = flows_veh_h * self.inv_capacity_h_veh
        if self.quartic:
            return 4.0 * self.inv_capacity_h_veh * self.scale_min * (ratio * ratio * ratio)
        return self.power * self.inv_capacity_h_veh * self.scale_min * ratio ** (self.power - 1.0)


def line_search(
    bpr: BprLinks, flows: np.ndarray, direction: np.ndarray, times: np.ndarray
) -> float:
    """Step in [0, 1] minimising the Beckmann objective along ``flows + step * direction``.

    Safeguarded Newton on the directional derivative ``sum(t(x + step d) * d)``, which
    rises with the step because BPR times rise with flow.
    """
    slope_lo = float(times @ direction)
    if slope_lo >= 0.0:
        return 0.0
    slope_hi = float(bpr.time(flows + direction) @ direction)
    if slope_hi <= 0.0:
        return 1.0
    lo, hi = 0.0, 1.0
    step = slope_lo / (slope_lo - slope_hi)
    for _ in range(60):
        at = flows + step * direction
        slope = float(bpr.time(at) @ direction)
        if slope > 0.0:
            hi = step
        else:
            lo = step
        curvature = float(bpr.slope(at) @ (direction * direction))
        new = step - slope / curvature if curvature > 0.0 else 0.5 * (lo + hi)
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - step) <= 1e-10 * step or hi - lo <= 1e-15:
            return new
        step = new
    return step


class Directions:
    """Search directions of plain, conjugate and bi-conjugate Frank–Wolfe.

    Bi-conjugate FW after Mitradjieva & Lindberg (2013), in the form AequilibraE uses: the
    target point mixes the new all-or-nothing flows with the last two targets so that the
    direction is conjugate to the last two under the Hessian ``diag(t'(x))``. A full step
    lands on the last target and leaves no history, so the sequence restarts: plain FW,
    then conjugate, then bi-conjugate.
    """

    def __init__(self, method: str) -> None:
        self.method = method
        self.last = np.zeros(0)  # (L,) previous target s_{k-1}
        self.before = np.zeros(0)  # (L,) target s_{k-2}
        self.last_step = 0.0
        self.depth = 0  # how many past targets the next direction may use

    def restart(self) -> None:
        """Forget the history: the next direction is a plain Frank–Wolfe one."""
        self.depth = 0

    def target(self, bpr: BprLinks, flows: np.ndarray, aon: np.ndarray) -> np.ndarray:
        """The point (L,) to step towards from ``flows`` given the all-or-nothing ``aon``."""
        if self.method == "fw" or self.depth == 0:
            return aon
        hessian = bpr.slope(flows)  # (L,)
        to_last = self.last - flows  # (L,)
        if self.method == "cfw" or self.depth == 1:
            weighted = hessian * to_last
            num = float(weighted @ (aon - flows))
            den = float(weighted @ (aon - self.last))
            alpha = min(max(num / den, 0.0), 0.99999) if den != 0.0 else 0.0
            return alpha * self.last + (1.0 - alpha) * aon
        step = self.last_step
        last_dir = hessian * (step * self.last + (1.0 - step) * self.before - flows)  # (L,)
        to_aon = aon - flows  # (L,)
        mu_den = float(last_dir @ (self.before - self.last))
        mu = max(0.0, -float(last_dir @ to_aon) / mu_den) if mu_den != 0.0 else 0.0
        nu_den = float((hessian * to_last) @ to_last)
        nu = -float((hessian * to_last) @ to_aon) / nu_den if nu_den != 0.0 else 0.0
        nu = max(0.0, nu + mu * step / (1.0 - step))
        b0 = 1.0 / (1.0 + mu + nu)
        return b0 * aon + (nu * b0) * self.last + (mu * b0) * self.before

    def record(self, target: np.ndarray, step: float) -> None:
        """Remember the target just used and the step taken towards it."""
        self.before, self.last, self.last_step = self.last, target, step
        self.depth = 0 if step >= 1.0 - 1e-9 else min(self.depth + 1, 2)
