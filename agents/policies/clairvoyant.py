"""The clairvoyant reference (`ClairvoyantPolicy`): a myopic greedy allocation over one
interval that reads the world's true incidents and rates. It is a reference point, not a
bound: it plans one interval ahead, so a policy may do better over a day, and no deployable
policy sees what it sees.

See `agents.policies.baselines` for what it reads and how it allocates; this module holds its
greedy allocation (`greedy_allocation`, a function of the world's read-only view and of the
incidents and risk factors it is told to plan for) and the closed forms of the expected
undetected time it minimises. N nodes, K = 3 incident kinds that arrive at random, I open
incidents.
"""

from __future__ import annotations

import numpy as np

from agents.policies.actions import RANDOM_KINDS, on_nodes
from simcity.env import CityEnv
from simcity.monitoring import incidents as inc
from simcity.monitoring.monitor import SENSOR_FOR_INCIDENT
from simcity.monitoring.truth import true_state
from simcity.world import WorldView

CLAIRVOYANT_CHUNKS = 64
"""Budget chunks of the clairvoyant reference's greedy allocation (its resolution:
budget / chunks)."""


def _fixed_exposure_gain(hazard_per_min: np.ndarray, exposure_min: np.ndarray) -> np.ndarray:
    """How fast the expected undetected time over an exposure falls with the hazard.

    An incident exposed for t at hazard h stays undetected ``(1 - exp(-h t)) / h`` on
    average; this is minus its derivative in h, ``t^2 phi(h t)`` with
    ``phi(y) = (1 - exp(-y) (1 + y)) / y^2`` (1/2 at y = 0).

    >>> _fixed_exposure_gain(np.array([0.0, 0.1]), np.array([10.0, 10.0])).round(4).tolist()
    [50.0, 26.4241]
    """
    y = hazard_per_min * exposure_min
    safe = np.maximum(y, 1e-4)
    phi = np.where(y > 1e-4, (-np.expm1(-safe) - safe * np.exp(-safe)) / safe**2, 0.5)
    return exposure_min**2 * phi


def _uniform_exposure_gain(hazard_per_min: np.ndarray, dt_min: float) -> np.ndarray:
    """`_fixed_exposure_gain` averaged over an exposure uniform on [0, dt] (an arrival).

    ``dt^2 psi(h dt)`` with ``psi(x) = (x - 2 + exp(-x) (2 + x)) / x^3`` (1/6 at x = 0).

    >>> _uniform_exposure_gain(np.array([0.0, 0.1]), 10.0).round(4).tolist()
    [16.6667, 10.3638]
    """
    x = hazard_per_min * dt_min
    safe = np.maximum(x, 1e-3)
    psi = np.where(x > 1e-3, (safe - 2.0 + np.exp(-safe) * (2.0 + safe)) / safe**3, 1.0 / 6.0)
    return dt_min**2 * psi


def true_rates_per_h(view: WorldView, hotspot: np.ndarray) -> np.ndarray:
    """True arrival rates (N, K) per hour of the coming interval at risk factors ``hotspot``
    (N,): `simcity.monitoring.truth.true_state` of the last interval's traffic under the capacity
    cuts now in force, and the last interval's load; accidents summed at link heads."""
    traffic, mon, city = view.traffic, view.monitoring, view.city
    state = true_state(
        city,
        view.scenario,
        traffic.flows_veh_h,
        traffic.times_min,
        city.capacity_veh_h * view.capacity_factor * mon.cut_factor,
        view.energy.node_load_kw,
        view.feeder_kw,
        hotspot,
    )
    n = city.num_nodes
    accidents = np.bincount(city.link_head, weights=state.accident_rate_per_h, minlength=n)
    return np.stack([accidents, state.pollution_rate_per_h, state.overload_rate_per_h], axis=1)


def greedy_allocation(
    view: WorldView,
    open_incidents: inc.Incidents,
    hotspot: np.ndarray,
    damage_per_min: np.ndarray,
    chunks: int = CLAIRVOYANT_CHUNKS,
    min_gain: float | None = None,
) -> np.ndarray:
    """Units per node (N,): greedy chunks of the budget by marginal damage-weighted detection
    time saved over the coming interval (`ClairvoyantPolicy`), for ``open_incidents`` and the
    arrivals at the true rates under risk factors ``hotspot`` (N,); ``damage_per_min`` (K,)
    is the mean damage rate of a new incident of each random kind. With ``min_gain`` a
    chunk whose marginal gain is below it is not given (the units stay unused)."""
    mon, cfg, city = view.monitoring, view.scenario.monitoring, view.city
    n, dt_min, now = city.num_nodes, view.dt_min, view.now_min
    up = mon.sensors_up_share  # (N, K)
    # Open incidents not yet detected (I,).
    open_ = open_incidents
    todo = ~open_.detected & (open_.end_min > now)
    node = open_.node[todo]
    weight_open = open_.damage_per_min[todo]
    exposure = np.minimum(open_.end_min[todo] - now, dt_min)
    up_open = up[node, SENSOR_FOR_INCIDENT[open_.kind[todo]]]
    # Incidents to arrive this interval: the true rates under the cuts now in force.
    rates_per_h = true_rates_per_h(view, hotspot)  # (N, K)
    weight_new = rates_per_h * dt_min / 60.0 * damage_per_min  # (N, K)
    # Scheduled incidents due this interval are known for certain; they are sensed
    # like accidents (by traffic counters), so they join that column.
    start_h = view.scenario.time.start_hour
    for planned in view.scenario.incidents.scheduled:
        due_min = ((planned.at_h - start_h) % 24.0) * 60.0
        if now <= due_min < now + dt_min:
            site = city.nearest_node(planned.lon, planned.lat)
            weight_new[site, 0] += planned.damage_per_min * planned.severity
    up_new = up[:, SENSOR_FOR_INCIDENT[RANDOM_KINDS]]  # (N, K)

    chunk = cfg.budget_units / chunks

    def gains(rows: np.ndarray, units: np.ndarray, nbr: np.ndarray) -> np.ndarray:
        """Marginal gain (R, C) at nodes ``rows`` (R,) with ``units`` (C,) on each."""
        h_new = inc.detection_hazard_per_min(
            units,
            nbr[rows, None, None],
            up_new[rows, :, None],
            report_per_min=cfg.report_per_min,
            sensor_per_min=cfg.sensor_per_min,
            unit_per_min=cfg.unit_per_min,
            spill=cfg.spill,
        )  # (R, K, C)
        weight = (weight_new * up_new)[rows, :, None]  # (R, K, 1)
        out = (weight * _uniform_exposure_gain(h_new, dt_min)).sum(axis=1)  # (R, C)
        position = np.full(n, -1)
        position[rows] = np.arange(len(rows))
        mine = position[node] >= 0  # open incidents at these rows (I,)
        h_open = inc.detection_hazard_per_min(
            units,
            nbr[node[mine], None],
            up_open[mine, None],
            report_per_min=cfg.report_per_min,
            sensor_per_min=cfg.sensor_per_min,
            unit_per_min=cfg.unit_per_min,
            spill=cfg.spill,
        )  # (I', C)
        gain_open = (weight_open * up_open)[mine, None] * _fixed_exposure_gain(
            h_open, exposure[mine, None]
        )
        np.add.at(out, position[node[mine]], gain_open)
        return out

    def allocate(nbr: np.ndarray) -> np.ndarray:
        """Greedy allocation (N,) given the neighbours' mean allocation ``nbr`` (N,)."""
        # A node's later chunks gain less than its first, so only nodes whose first
        # chunk is among the best `chunks` first chunks can get any.
        first = gains(np.arange(n), np.zeros(1), nbr)[:, 0]  # (N,)
        cut = np.partition(first, n - chunks)[n - chunks] if n > chunks else -1.0
        rows = np.flatnonzero(first >= cut)  # (R,)
        table = gains(rows, chunk * np.arange(chunks), nbr)  # (R, C)
        best = np.argpartition(-table.ravel(), chunks - 1)[:chunks]
        if min_gain is not None:
            best = best[table.ravel()[best] >= min_gain]
        allocation = np.zeros(n)
        allocation[rows] = chunk * np.bincount(best // chunks, minlength=len(rows))
        return allocation

    first_pass = allocate(np.zeros(n))
    return allocate(mon.neighbour_mean @ first_pass)


class ClairvoyantPolicy:
    """Clairvoyant myopic allocation from the env's true incidents and rates.

    Detecting an incident one minute sooner saves ``damage_per_min * (1 - response damage
    factor x response duration factor)`` while it is open (its damage rate drops and its
    remaining time shrinks), so the policy minimises the damage-rate-weighted expected time
    that incidents stay undetected during the coming interval: open undetected ones over
    ``min(remaining, dt)``, those arriving at the true rates over a uniform part of it, and
    scheduled incidents due in the interval (sensed like accidents).

    The budget goes out in `CLAIRVOYANT_CHUNKS` equal chunks, greedily by marginal gain. The
    gain of a node's c-th chunk falls with c (the objective is concave), so greedy is the
    top chunks of the table of all nodes' marginal gains per chunk, found in one pass over
    the nodes whose first chunk could make the cut.
    A node's gains count the spill it receives from its neighbours' allocation of a first
    pass; the spill it gives is left out (a unit does at least 1 / spill = 4 times more at
    its own node than at a neighbour). Before the
    first interval (no traffic simulated yet) it splits by residents + jobs. It reads the
    world through its read-only view (`simcity.world.WorldView`) and never writes into it.
    """

    name = "clairvoyant"
    flops_per_decision: float = 0.0

    def __init__(self, env: CityEnv, chunks: int = CLAIRVOYANT_CHUNKS) -> None:
        self.env = env
        self.chunks = chunks
        # Mean damage rate of a new incident of each kind (mean severity is 1) (K,).
        self._damage_per_min = np.asarray(env.scenario.incidents.damage_per_min)[RANDOM_KINDS]

    def reset(self, seed: int | None) -> None:
        """Nothing to reset: the truth is read from the env at every step."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Greedy chunks of the budget by marginal damage-weighted detection time saved."""
        view = self._view(obs)
        if view.traffic.snapshot is None:
            # Nothing simulated yet, so no true rates without solving the traffic here.
            return on_nodes(view.city.population + view.city.jobs)
        mon = view.monitoring
        return on_nodes(self._allocate(view, mon.open, mon.hotspot))

    def _view(self, obs: dict[str, np.ndarray]) -> WorldView:
        """The env's world, read-only, after checking ``obs`` comes from it."""
        world = self.env.world
        if world is None:
            raise RuntimeError(f"the {self.name} policy acts after env.reset()")
        n = obs["nodes"].shape[0]
        if n != world.city.num_nodes:
            raise ValueError(f"{self.name}'s env has {world.city.num_nodes} nodes, observed {n}")
        return world.view

    def _allocate(
        self, view: WorldView, open_incidents: inc.Incidents, hotspot: np.ndarray
    ) -> np.ndarray:
        return greedy_allocation(view, open_incidents, hotspot, self._damage_per_min, self.chunks)
