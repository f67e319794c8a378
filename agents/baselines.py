"""Baseline policies behind the `Policy` protocol, and `make_baseline` to build one by name.

N nodes, F node features (`simcity.env.NODE_FEATURES`), K = 3 incident kinds that arrive
at random (accident, pollution, grid overload). Every policy but "oracle" reads only the
observation, so it runs on a city of any size; "population" also keeps the city's
resident counts, and "oracle" reads the env's true state (it is an upper bound, not a
policy one could deploy). Only "random" puts weight on the unused slot.

- ``random``: Dirichlet(1) weights over the N + 1 slots from its own seeded generator.
- ``uniform``: equal weight on every node.
- ``population``: proportional to each node's people (residents plus workers).
- ``traffic``: proportional to traffic exposure from the congestion estimate,
  ``c (1 + 2 c^2)`` (flow grows with v/c, accident risk with its square); activity (the
  log-scaled population and jobs features) before any estimate.
- ``risk``: risk-greedy: the expected incident rates implied by the estimates (each kind
  scaled to sum 1: traffic exposure, emissions squared, the overload exponential), times
  the node's risk factor estimated from the city's incident records, times
  ``1 + recent / RISK_PRIOR_DETECTIONS``, where ``recent`` is the decayed count of recent
  detections at the node: a node that keeps having incidents is likely a hotspot.
- ``alarm``: the risk weights times ``exp(ALARM_GAIN * S)``, where ``S`` is the node's
  CUSUM evidence of readings no known incident explains (feature ``anomaly``): chases the
  sensors' sub-threshold hints, as an operator watching anomaly scores would.
- ``oracle``: clairvoyant and myopic (an upper bound on service, not a deployable policy).
  It reads the true open, undetected incidents (node, damage rate, true end) and the true
  arrival rates of the coming interval (`simcity.truth.true_state` of the last
  interval's traffic under the capacity cuts now in force, and the last interval's load),
  and spends the budget in `ORACLE_CHUNKS` greedy chunks that minimise the damage-rate-
  weighted time incidents stay undetected in the interval, under the env's own detection
  model, spill from neighbours included (`OraclePolicy`). With nothing open it follows
  the true arrival rates times their damage, and scheduled incidents due in the interval.
  On 20 downtown days it matched, within noise (paired damage -1.2% +- 2.7%), the simpler
  rule of budget in proportion to the damage rates of open undetected incidents.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agents.policy import Policy
from simcity import incidents as inc
from simcity.env import ANOMALY_SCALE, NODE_FEATURES, CityEnv
from simcity.errors import SimcityError
from simcity.monitoring import SENSOR_FOR_INCIDENT
from simcity.truth import true_state

BASELINES: tuple[str, ...] = (
    "random",
    "uniform",
    "population",
    "traffic",
    "risk",
    "alarm",
    "oracle",
)
RISK_PRIOR_DETECTIONS = 1.0
"""Detections' worth of weight the risk policy spreads by its congestion/load prior."""
ALARM_GAIN = 0.5
"""Log-weight per unit of CUSUM evidence in the alarm policy (best of 0.25, 0.5, 0.75 on
30 downtown days at ``alarm_snr`` 1 and 1.5)."""
ORACLE_CHUNKS = 64
"""Budget chunks of the oracle's greedy allocation (its resolution: budget / chunks)."""

_POP, _JOBS, _CONGESTION, _LOAD, _EMISSIONS, _RECENT, _HISTORY, _ANOMALY = (
    NODE_FEATURES.index(name)
    for name in (
        "population",
        "jobs",
        "congestion_est",
        "load_ratio_est",
        "emissions_est",
        "recent_detections",
        "risk_history",
        "anomaly",
    )
)
_RANDOM_KINDS = np.array([inc.ACCIDENT, inc.POLLUTION, inc.GRID_OVERLOAD])  # (K,)


def _on_nodes(weights: np.ndarray) -> np.ndarray:
    """Action (N + 1,) with ``weights`` (N,) on the nodes, equal weights if they are all 0."""
    weights = np.where(np.isfinite(weights), np.maximum(weights, 0.0), 0.0)
    if not weights.sum() > 0.0:
        weights = np.ones_like(weights)
    return np.append(weights, 0.0)


def _activity(nodes: np.ndarray) -> np.ndarray:
    """Exposure proxy per node (N,): mean of the log-scaled population and jobs features."""
    return 0.5 * (nodes[..., _POP] + nodes[..., _JOBS])


class RandomPolicy:
    """Dirichlet(1) weights over all N + 1 slots, unused one included."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None) -> None:
        """Restart its generator from (own seed, episode seed); keep it going for None."""
        if seed is not None:
            self.rng = np.random.default_rng([self.seed, seed])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """A fresh Dirichlet(1) draw."""
        return self.rng.dirichlet(np.ones(obs["nodes"].shape[0] + 1))


class UniformPolicy:
    """The same units at every node; nothing unused."""

    name = "uniform"

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Equal node weights."""
        return _on_nodes(np.ones(obs["nodes"].shape[0]))


class PopulationPolicy:
    """Units in proportion to people: residents plus workers, from the city's census.

    The observation only has log-scaled counts, so they come from the city.
    """

    name = "population"

    def __init__(self, population: np.ndarray) -> None:
        self.population = np.asarray(population, dtype=float)  # (N,)

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Residents per node as weights."""
        n = obs["nodes"].shape[0]
        if n != len(self.population):
            raise ValueError(
                f"population policy built for {len(self.population)} nodes, observed {n}"
            )
        return _on_nodes(self.population)


def _traffic_risk(congestion: np.ndarray) -> np.ndarray:
    """Accident exposure from v/c: flow grows with v/c, risk with ``1 + 2 (v/c)^2``."""
    return congestion * (1.0 + 2.0 * congestion**2)


class TrafficPolicy:
    """Units in proportion to traffic: estimated v/c times its congestion risk factor."""

    name = "traffic"

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Traffic exposure from the congestion estimate; activity while none is estimated."""
        nodes = obs["nodes"].astype(np.float64)  # (N, F)
        weights = _traffic_risk(nodes[:, _CONGESTION])
        return _on_nodes(weights if weights.sum() > 0.0 else _activity(nodes))


class RiskPolicy:
    """Risk-greedy: expected incident rates from the estimates, times the records' risk
    factor, raised where incidents were recently detected (a sign of a hotspot):
    ``prior_i * history_i * (1 + k * recent_i)``."""

    name = "risk"

    def __init__(self, prior_detections: float = RISK_PRIOR_DETECTIONS) -> None:
        self.prior_detections = prior_detections

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Expected rates times a boost per recent detection (class doc)."""
        return _on_nodes(risk_weights(obs["nodes"], self.prior_detections))


class AlarmPolicy:
    """The risk weights times ``exp(ALARM_GAIN * S)``, S the node's CUSUM evidence."""

    name = "alarm"

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Risk weights raised where the readings are unexplained."""
        return _on_nodes(alarm_weights(obs["nodes"]))


def alarm_weights(nodes: np.ndarray, gain: float = ALARM_GAIN) -> np.ndarray:
    """The alarm policy's node weights (..., N) for node features (..., N, F), any batch:
    `risk_weights` scaled to sum 1, times ``exp(gain * S)`` with S the CUSUM evidence.
    `agents.attention` uses it as an optional prior."""
    weights = risk_weights(nodes)  # (..., N)
    weights = weights / np.maximum(weights.sum(axis=-1, keepdims=True), 1e-300)
    evidence = np.asarray(nodes, dtype=np.float64)[..., _ANOMALY] * ANOMALY_SCALE
    return weights * np.exp(gain * evidence)


def risk_weights(nodes: np.ndarray, prior_detections: float = RISK_PRIOR_DETECTIONS) -> np.ndarray:
    """The risk policy's node weights (..., N) for node features (..., N, F), any batch.

    Expected incident rates from the estimates (each kind scaled to sum 1 over the
    nodes), or activity before any estimate, times the records' risk factor, times
    ``1 + recent / prior_detections``. `agents.attention` uses it as an optional prior.
    """
    nodes = np.asarray(nodes, dtype=np.float64)  # (..., N, F)
    share = np.clip(nodes[..., _RECENT], 0.0, 1.0 - 1e-6)
    recent = share / (1.0 - share)  # undo the feature's x / (1 + x)
    parts = np.stack(
        [
            _traffic_risk(nodes[..., _CONGESTION]),
            np.minimum(nodes[..., _EMISSIONS], 3.0) ** 2,
            np.exp(8.0 * (np.minimum(nodes[..., _LOAD], 1.5) - 1.0)),
        ],
        axis=-2,
    )  # (..., 3, N)
    sums = parts.sum(axis=-1, keepdims=True)
    prior = np.divide(parts, sums, out=np.zeros_like(parts), where=sums > 0).sum(axis=-2)
    empty = ~(prior.sum(axis=-1, keepdims=True) > 0.0)  # (..., 1) nothing estimated yet
    prior = np.where(empty, _activity(nodes), prior)
    total = prior.sum(axis=-1, keepdims=True)
    even = np.full_like(prior, 1.0 / prior.shape[-1])
    prior = np.divide(prior, total, out=even, where=total > 0.0)
    return prior * nodes[..., _HISTORY] * (1.0 + recent / prior_detections)


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


class OraclePolicy:
    """Clairvoyant myopic allocation from the env's true incidents and rates.

    Detecting an incident one minute sooner saves ``damage_per_min * (1 - response damage
    factor x response duration factor)`` while it is open (its damage rate drops and its
    remaining time shrinks), so the oracle minimises the damage-rate-weighted expected time
    that incidents stay undetected during the coming interval: open undetected ones over
    ``min(remaining, dt)``, and those arriving at the true rates over a uniform part of it.

    The budget goes out in `ORACLE_CHUNKS` equal chunks, greedily by marginal gain. The
    gain of a node's c-th chunk falls with c (the objective is concave), so greedy is the
    top chunks of the table of all nodes' marginal gains per chunk, found in one pass over
    the nodes whose first chunk could make the cut.
    A node's gains count the spill it receives from its neighbours' allocation of a first
    pass; the spill it gives is left out (a unit does at least 1 / spill = 4 times more at
    its own node than at a neighbour). Scheduled incidents are not anticipated; before the
    first interval (no traffic simulated yet) it splits by residents + jobs.
    """

    name = "oracle"

    def __init__(self, env: CityEnv, chunks: int = ORACLE_CHUNKS) -> None:
        self.env = env
        self.chunks = chunks
        # Mean damage rate of a new incident of each kind (mean severity is 1) (K,).
        self._damage_per_min = np.asarray(env.scenario.incidents.damage_per_min)[_RANDOM_KINDS]

    def reset(self, seed: int | None) -> None:
        """Nothing to reset: the truth is read from the env at every step."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Greedy chunks of the budget by marginal damage-weighted detection time saved."""
        world = self.env.world
        if world is None:
            raise RuntimeError("the oracle acts after env.reset()")
        n = obs["nodes"].shape[0]
        if n != world.city.num_nodes:
            raise ValueError(f"oracle's env has {world.city.num_nodes} nodes, observed {n}")
        if world.traffic is None:
            # Nothing simulated yet, so no true rates without solving the traffic here.
            return _on_nodes(world.city.population + world.city.jobs)
        mon, cfg = world.monitoring, world.scenario.monitoring
        dt_min, now = world.dt_min, world.env.now
        up = mon.sensors_up_share  # (N, K)
        # Open incidents not yet detected (I,).
        open_ = mon.open
        todo = ~open_.detected & (open_.end_min > now)
        node = open_.node[todo]
        weight_open = open_.damage_per_min[todo]
        exposure = np.minimum(open_.end_min[todo] - now, dt_min)
        up_open = up[node, SENSOR_FOR_INCIDENT[open_.kind[todo]]]
        # Incidents to arrive this interval: the true rates under the cuts now in force.
        state = true_state(
            world.city,
            world.scenario,
            world.flows_veh_h,
            world.times_min,
            world.city.capacity_veh_h * world.capacity_factor * mon.cut_factor,
            world.node_load_kw,
            world.feeder_kw,
            mon.hotspot,
        )
        accidents = np.bincount(
            world.city.link_head, weights=state.accident_rate_per_h, minlength=n
        )
        rates_per_h = np.stack(
            [accidents, state.pollution_rate_per_h, state.overload_rate_per_h], axis=1
        )  # (N, K)
        weight_new = rates_per_h * dt_min / 60.0 * self._damage_per_min  # (N, K)
        # Scheduled incidents due this interval are known for certain; they are sensed
        # like accidents (by traffic counters), so they join that column.
        start_h = world.scenario.time.start_hour
        for planned in world.scenario.incidents.scheduled:
            due_min = ((planned.at_h - start_h) % 24.0) * 60.0
            if now <= due_min < now + dt_min:
                site = world.city.nearest_node(planned.lon, planned.lat)
                weight_new[site, 0] += planned.damage_per_min * planned.severity
        up_new = up[:, SENSOR_FOR_INCIDENT[_RANDOM_KINDS]]  # (N, K)

        chunk = cfg.budget_units / self.chunks

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
            cut = np.partition(first, n - self.chunks)[n - self.chunks] if n > self.chunks else -1.0
            rows = np.flatnonzero(first >= cut)  # (R,)
            table = gains(rows, chunk * np.arange(self.chunks), nbr)  # (R, C)
            best = np.argpartition(-table.ravel(), self.chunks - 1)[: self.chunks]
            allocation = np.zeros(n)
            allocation[rows] = chunk * np.bincount(best // self.chunks, minlength=len(rows))
            return allocation

        first_pass = allocate(np.zeros(n))
        return _on_nodes(allocate(mon.neighbour_mean @ first_pass))


_FACTORIES: dict[str, Callable[[CityEnv, int], Policy]] = {
    "random": lambda env, seed: RandomPolicy(seed),
    "uniform": lambda env, seed: UniformPolicy(),
    "population": lambda env, seed: PopulationPolicy(env.city.population + env.city.jobs),
    "traffic": lambda env, seed: TrafficPolicy(),
    "risk": lambda env, seed: RiskPolicy(),
    "alarm": lambda env, seed: AlarmPolicy(),
    "oracle": lambda env, seed: OraclePolicy(env),
}


def make_baseline(name: str, env: CityEnv, seed: int = 0) -> Policy:
    """The baseline called ``name`` for ``env`` (a `CityEnv`, or a wrapper around one).

    Raises `SimcityError` for an unknown name, listing the known ones.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        raise SimcityError(
            f"unknown baseline {name!r}", field="policy", expected="one of " + ", ".join(BASELINES)
        )
    unwrapped = env.unwrapped
    if not isinstance(unwrapped, CityEnv):
        raise TypeError(f"expected a CityEnv, got {type(unwrapped).__name__}")
    return factory(unwrapped, seed)
