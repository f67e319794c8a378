"""Baseline policies behind the `Policy` protocol, and `make_baseline` to build one by name.

N nodes, F node features (`simcity.env.NODE_FEATURES`), K = 3 incident kinds that arrive
at random (accident, pollution, grid overload). Every policy but "oracle" reads only the
observation, so it runs on a city of any size; "population" also keeps the city's
resident counts, and "oracle" reads the env's true state (it is an upper bound, not a
policy one could deploy). Only "random" puts weight on the unused slot.

- ``random``: Dirichlet(1) weights over the N + 1 slots from its own seeded generator.
- ``uniform``: equal weight on every node.
- ``population``: proportional to each node's residents.
- ``traffic``: proportional to estimated congestion times an activity exposure (the mean
  of the log-scaled population and jobs features); activity alone before any estimate.
- ``risk``: risk-greedy on the decayed count of recent detections at each node, plus a
  prior worth `RISK_PRIOR_DETECTIONS` detections spread in proportion to the estimated
  congestion + load ratio + emissions ratio (activity before any estimate), so that it
  is not blind at the start and keeps looking beyond where it already found incidents.
- ``oracle``: clairvoyant and myopic. It reads the true open, undetected incidents (their
  node, damage rate and true end) and the true arrival rates of the coming interval
  (`simcity.monitoring.true_state` of the last interval's traffic under the capacity cuts
  now in force, and the last interval's load), then spends the budget in `ORACLE_CHUNKS`
  equal chunks, each where it most raises the expected damage avoided by detection this
  interval. That objective is the env's own detection model (hazard linear in the units
  at the node and, through ``spill``, at its neighbours; detection ``1 - exp(-h t)``), so
  budget goes to a neighbour exactly when the spill makes it the better buy, and with no
  incident open it follows the true arrival rates times their damage at stake.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from agents.policy import Policy
from simcity import incidents as inc
from simcity.env import NODE_FEATURES, CityEnv
from simcity.errors import SimcityError
from simcity.monitoring import SENSOR_FOR_INCIDENT, true_state

BASELINES: tuple[str, ...] = ("random", "uniform", "population", "traffic", "risk", "oracle")
RISK_PRIOR_DETECTIONS = 1.0
"""How many detections' worth of weight the risk policy spreads by its congestion/load prior."""
ORACLE_CHUNKS = 64
"""Budget chunks of the oracle's greedy allocation (its resolution: budget / chunks)."""

_POP, _JOBS, _CONGESTION, _LOAD, _EMISSIONS, _RECENT = (
    NODE_FEATURES.index(name)
    for name in (
        "population",
        "jobs",
        "congestion_est",
        "load_ratio_est",
        "emissions_est",
        "recent_detections",
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
    return 0.5 * (nodes[:, _POP] + nodes[:, _JOBS])


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
    """Units in proportion to residents, a static allocation from the city's census.

    The observation only has log-scaled population, so the counts come from the city.
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


class TrafficPolicy:
    """Units in proportion to estimated congestion times activity (see module doc)."""

    name = "traffic"

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Congestion estimate x activity; activity alone while nothing is estimated."""
        nodes = obs["nodes"].astype(np.float64)  # (N, F)
        activity = _activity(nodes)
        weights = nodes[:, _CONGESTION] * activity
        return _on_nodes(weights if weights.sum() > 0.0 else activity)


class RiskPolicy:
    """Units where incidents were recently detected, plus a congestion/load prior."""

    name = "risk"

    def __init__(self, prior_detections: float = RISK_PRIOR_DETECTIONS) -> None:
        self.prior_detections = prior_detections

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Decayed detection count + prior share (module doc)."""
        nodes = obs["nodes"].astype(np.float64)  # (N, F)
        share = np.clip(nodes[:, _RECENT], 0.0, 1.0 - 1e-6)
        recent = share / (1.0 - share)  # undo the feature's x / (1 + x)
        prior = nodes[:, [_CONGESTION, _LOAD, _EMISSIONS]].sum(axis=1)
        if not prior.sum() > 0.0:
            prior = _activity(nodes)
        total = prior.sum()
        prior = prior / total if total > 0.0 else np.full(len(prior), 1.0 / len(prior))
        return _on_nodes(recent + self.prior_detections * prior)


class OraclePolicy:
    """Clairvoyant myopic allocation from the env's true incidents and rates (module doc)."""

    name = "oracle"

    def __init__(self, env: CityEnv, chunks: int = ORACLE_CHUNKS) -> None:
        self.env = env
        self.chunks = chunks
        scenario = env.scenario
        mon, cfg = scenario.monitoring, scenario.incidents
        self._saving = 1.0 - cfg.response_damage_factor * cfg.response_duration_factor
        # Damage avoided by detecting a new incident of each kind right away (K,).
        kinds = _RANDOM_KINDS
        self._arrival_stake = (
            np.asarray(cfg.damage_per_min)[kinds]
            * np.asarray(cfg.mean_duration_min)[kinds]
            * self._saving
        )
        self._mon = mon

    def reset(self, seed: int | None) -> None:
        """Nothing to reset: the truth is read from the env at every step."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Greedy chunks of the budget by marginal expected damage avoided."""
        world = self.env.world
        if world is None:
            raise RuntimeError("the oracle acts after env.reset()")
        n = obs["nodes"].shape[0]
        if n != world.city.num_nodes:
            raise ValueError(f"oracle's env has {world.city.num_nodes} nodes, observed {n}")
        mon, cfg = world.monitoring, self._mon
        dt_min, now = world.dt_min, world.env.now
        up = mon.sensors_up_share  # (N, K)
        # Open incidents not yet detected: where they are, what detecting them saves.
        open_ = mon.open
        todo = ~open_.detected & (open_.end_min > now)
        node = open_.node[todo]
        remaining = open_.end_min[todo] - now
        exposure = np.minimum(remaining, dt_min)
        stake = open_.damage_per_min[todo] * (remaining - exposure / 2) * self._saving
        up_open = up[node, SENSOR_FOR_INCIDENT[open_.kind[todo]]]
        # Incidents arriving during the interval, at the true rates (N, K).
        state = true_state(
            world.city,
            world.scenario,
            world.flows_veh_h,
            world.times_min,
            world.city.capacity_veh_h * world.capacity_factor * mon.cut_factor,
            world.node_load_kw,
            world.feeder_kw,
        )
        accidents = np.bincount(
            world.city.link_head, weights=state.accident_rate_per_h, minlength=n
        )
        rates_per_h = np.stack(
            [accidents, state.pollution_rate_per_h, state.overload_rate_per_h], axis=1
        )
        arrival_stake = rates_per_h * dt_min / 60.0 * self._arrival_stake  # (N, K)
        up_new = up[:, SENSOR_FOR_INCIDENT[_RANDOM_KINDS]]  # (N, K)

        def hazard(a: np.ndarray, nbr: np.ndarray, sensors_up: np.ndarray) -> np.ndarray:
            return inc.detection_hazard_per_min(
                a,
                nbr,
                sensors_up,
                report_per_min=cfg.report_per_min,
                sensor_per_min=cfg.sensor_per_min,
                unit_per_min=cfg.unit_per_min,
                spill=cfg.spill,
            )

        def gain(a: np.ndarray) -> np.ndarray:
            """d(expected damage avoided this interval) / d(units at each node) (N,)."""
            nbr = mon.neighbour_mean @ a
            h_open = hazard(a[node], nbr[node], up_open)
            d_open = stake * exposure * np.exp(-h_open * exposure) * up_open
            # Arrivals exposed uniformly over the interval: P = 1 - (1 - e^-x) / x, x = h dt.
            x = hazard(a[:, None], nbr[:, None], up_new) * dt_min  # (N, K)
            dp_dx = np.where(
                x > 1e-6, (-np.expm1(-x) - x * np.exp(-x)) / np.maximum(x, 1e-6) ** 2, 0.5
            )
            direct = cfg.unit_per_min * (
                np.bincount(node, weights=d_open, minlength=n)
                + (arrival_stake * dp_dx * dt_min * up_new).sum(axis=1)
            )
            return direct + cfg.spill * (mon.neighbour_mean.T @ direct)

        allocation = np.zeros(n)
        chunk = world.scenario.monitoring.budget_units / self.chunks
        for _ in range(self.chunks):
            allocation[np.argmax(gain(allocation))] += chunk
        return _on_nodes(allocation)


_FACTORIES: dict[str, Callable[[CityEnv, int], Policy]] = {
    "random": lambda env, seed: RandomPolicy(seed),
    "uniform": lambda env, seed: UniformPolicy(),
    "population": lambda env, seed: PopulationPolicy(env.city.population),
    "traffic": lambda env, seed: TrafficPolicy(),
    "risk": lambda env, seed: RiskPolicy(),
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
