"""CityEnv: the Gymnasium environment in which a policy spreads monitoring over a city.

N nodes, F node features, G global features. Registered as ``simcity/CityMonitoring-v0``:
``gymnasium.make("simcity/CityMonitoring-v0", scenario="downtown")``.

Observation (a Dict, float32):
    ``nodes`` (N, F), features in `NODE_FEATURES` order, each scaled to about [0, 1]
    (clipped to [0, 10]); ``globals`` (G,) in `GLOBAL_FEATURES` order: time of day, the
    data centre's grid intensity now and ahead, budget units per node, day progress, and the
    prices compute pays: electricity ($/kWh), carbon times the reward's carbon weight
    ($/kg: what the reward charges a kg), and the share left of the day's compute carbon
    or energy budget (`simcity.compute.budget`; the smaller of the two, 1 without one).
Action: N + 1 non-negative weights, one per node and a last "unused" slot. The budget is
    split in proportion: node i gets ``budget * w_i / sum(w)``; weight on the unused slot
    saves compute. Only ratios matter, so any scale works; negative weights count as 0;
    all-zero weights allocate nothing. NaN or infinite values, or a wrong shape, raise
    ValueError (never a silent NaN). With T analytics tiers (``[[compute.tiers]]``) the
    action is N * T + 1 weights, node-major (weight ``i * T + t``: node i, tier t) and the
    unused slot last; the budget is GPU capacity, split the same way, and a unit of tier t
    takes ``tier_cost[t]`` of it: node i gets ``budget * w_it / sum(w) / tier_cost[t]``
    units of tier t. A scenario without tiers is one tier, the action above.
Reward: minus the step's cost in money (incident damage + estimation-error cost + compute
    energy cost + carbon cost x carbon_weight), times ``reward.scale``. `info` carries every
    term and its physical quantity, and ``node_cost`` (N,): the cost split over the nodes
    (each node's damage and estimation error, compute in proportion to its units; it sums
    to ``cost_total`` but for compute spent with no units anywhere). It is the only array
    in `info`. The day ends with ``truncated=True``. Under a compute budget the world may
    scale an allocation down: `info` says the ``units_refused`` and the budget left
    (``compute_budget_left`` share, 1 without one; ``compute_budget_left_kg`` and
    ``compute_budget_left_kwh``, 0 without a budget of that kind).
Reset options: ``policy_flop_per_decision``, ``policy_device``, ``policy_latency_s``,
    ``policy_precision`` (what the policy's decisions cost), and ``carbon_weight``: the
    reward's carbon weight from this episode on (the observation shows it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.compute.bill import PolicyCompute
from simcity.config.devices import device_profile
from simcity.config.scenario import Scenario, load_scenario
from simcity.errors import SimcityError
from simcity.world import StepRecord, World

NODE_FEATURES: tuple[str, ...] = (
    "population",  # log1p(population) / log1p(max population)
    "jobs",  # log1p(jobs) / log1p(max jobs)
    "congestion_est",  # estimated mean v/c of links into the node
    "load_ratio_est",  # estimated load / feeder capacity
    "emissions_est",  # estimated traffic emissions / reference
    "traffic_counters_up",  # share of traffic counters working
    "air_quality_up",  # share of air-quality stations working (0 where none)
    "energy_meters_up",  # share of energy meters working
    "recent_detections",  # decayed count of detections (half-life 2 h), x / (1 + x)
    "open_detected",  # open incidents already detected here, / 3
    "previous_allocation",  # last step's units here / budget
    "has_air_quality",  # an air-quality station is installed
    "risk_history",  # the city's incident records' estimate of the node's risk factor
    "unwatched",  # expected undetected incidents per unit arrival rate, / its maximum
    "anomaly",  # CUSUM evidence of readings no known incident explains, max over Q, / 5
)
GLOBAL_FEATURES: tuple[str, ...] = (
    "time_sin",  # sin(2 pi hour / 24)
    "time_cos",
    "carbon_now",  # data centre's grid intensity now, g/kWh / 1000
    "carbon_next_1h",  # in one hour
    "carbon_next_3h",  # mean over the next three hours
    "budget_per_node",  # budget units / N
    "day_progress",  # step / steps per day
    "price_per_kwh",  # electricity price, $/kWh ([compute] price_per_kwh)
    "carbon_price_per_kg",  # carbon price x the reward's carbon weight, $/kg
    "compute_budget_left",  # share left of the day's compute budget (1 without one)
)
FEATURE_MAX = 10.0
ANOMALY_SCALE = 5.0
"""CUSUM evidence shown as 1 in the ``anomaly`` feature."""


class CityEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Spread a monitoring budget over a city every `dt_min` minutes; see module doc."""

    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium declares it per instance)

    def __init__(
        self,
        scenario: str | Path | Scenario = "downtown",
        *,
        policy_flop_per_decision: float = 0.0,
        city: City | None = None,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.city = city if city is not None else build_city(self.scenario, file=str(scenario))
        if not (np.isfinite(policy_flop_per_decision) and policy_flop_per_decision >= 0):
            raise ValueError(
                f"policy_flop_per_decision is {policy_flop_per_decision!r}; expected >= 0"
            )
        self.policy_flop_per_decision = float(policy_flop_per_decision)
        self.policy_device: str | None = None
        """The device profile the policy runs on; None: the scenario's ``policy_device``."""
        self.policy_latency_s: float | None = None
        """Measured time per decision on that device, billed in place of the modelled time."""
        self.policy_precision = "fp32"
        n = self.city.num_nodes
        self.budget_units = self.scenario.monitoring.budget_units
        self.num_tiers = self.scenario.compute.num_tiers
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "nodes": spaces.Box(0.0, FEATURE_MAX, (n, len(NODE_FEATURES)), np.float32),
                "globals": spaces.Box(-1.0, FEATURE_MAX, (len(GLOBAL_FEATURES),), np.float32),
            }
        )
        self.action_space = spaces.Box(0.0, 1.0, (n * self.num_tiers + 1,), np.float32)
        self._static = np.stack(
            [
                np.log1p(self.city.population) / max(np.log1p(self.city.population.max()), 1e-9),
                np.log1p(self.city.jobs) / max(np.log1p(self.city.jobs.max()), 1e-9),
            ],
            axis=1,
        )
        self.world: World | None = None

    # -- Gymnasium API --------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "policy_flop_per_decision" in options:
            self.policy_flop_per_decision = float(options["policy_flop_per_decision"])
        for key in ("policy_device", "policy_latency_s", "policy_precision"):
            if key in options:
                setattr(self, key, options[key])
        if "carbon_weight" in options:
            self.scenario = with_carbon_weight(self.scenario, options["carbon_weight"])
        self.world = World(
            self.scenario, self.city, rng=self.np_random, policy=self.policy_compute()
        )
        return self._observation(), {"step": 0}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.world is None:
            raise RuntimeError("call reset() before step()")
        allocation = self.allocation(action)
        record = self.world.advance(allocation)
        info = self.costs(record)
        reward = -info["cost_total"] * self.scenario.reward.scale
        info["reward"] = reward
        truncated = self.world.step_index >= self.world.num_steps
        return self._observation(), reward, False, truncated, info

    # -- mapping and accounting ---------------------------------------------------------

    def allocation(self, action: np.ndarray) -> np.ndarray:
        """Monitoring units per node (N,) for an action (N + 1 weights); with analytics
        tiers, units per node and tier (N, T) for N * T + 1 weights; see module doc."""
        weights = np.asarray(action, dtype=np.float64)
        expected = (self.city.num_nodes * self.num_tiers + 1,)
        if weights.shape != expected:
            raise ValueError(f"action has shape {weights.shape}; expected {expected}")
        if not np.isfinite(weights).all():
            raise ValueError("action contains NaN or infinite values")
        weights = np.maximum(weights, 0.0)
        largest = weights.max()
        tiered = bool(self.scenario.compute.tiers)
        shape = (self.city.num_nodes, self.num_tiers) if tiered else (self.city.num_nodes,)
        if largest <= 0.0:
            return np.zeros(shape)
        weights = weights / largest  # no overflow in the sum, even for weights near 1e308
        capacity = self.budget_units * weights[:-1] / weights.sum()
        if not tiered:
            return capacity
        return capacity.reshape(shape) / np.asarray(self.scenario.compute.tier_cost)

    def policy_compute(self) -> PolicyCompute:
        """What one decision costs to run and where (``policy_*`` attributes, else the
        scenario's ``[compute] policy_device``); `SimcityError` for an unknown device."""
        latency = self.policy_latency_s
        if latency is not None and not (np.isfinite(latency) and latency >= 0):
            raise ValueError(f"policy_latency_s is {latency!r}; expected >= 0 seconds")
        compute = self.scenario.compute
        name = self.policy_device if self.policy_device is not None else compute.policy_device
        device = None if name is None else device_profile(name, compute.devices_file)
        return PolicyCompute(
            self.policy_flop_per_decision,
            device,
            None if latency is None else float(latency),
            str(self.policy_precision),
        )

    def costs(self, record: StepRecord) -> dict[str, Any]:
        """The step's cost terms in money and their physical quantities."""
        reward_cfg = self.scenario.reward
        estimation = reward_cfg.estimation_cost * self.city.num_nodes * record.estimation_error
        carbon = reward_cfg.carbon_weight * record.compute_carbon_cost
        info: dict[str, Any] = record.as_dict()
        compute_cost = record.compute_energy_cost + carbon
        view = self.world.view if self.world is not None else None
        units = view.allocation if view is not None else np.zeros(self.city.num_nodes)
        total_units = units.sum()
        outcome = view.outcome if view is not None else None
        node_cost = (
            (outcome.damage_by_node + reward_cfg.estimation_cost * outcome.error_by_node)
            if outcome is not None
            else np.zeros(self.city.num_nodes)
        )
        if total_units > 0:
            node_cost = node_cost + compute_cost * units / total_units
        info.update(
            cost_damage=record.damage,
            cost_estimation=estimation,
            cost_energy=record.compute_energy_cost,
            cost_carbon=carbon,
            cost_total=record.damage + estimation + record.compute_energy_cost + carbon,
            node_cost=node_cost,
        )
        if outcome is not None:  # where the bill's figures came from
            info["compute_source"] = outcome.bill.analytics_provenance
            info["compute_policy_source"] = outcome.bill.policy_provenance
        return info

    def _observation(self) -> dict[str, np.ndarray]:
        assert self.world is not None
        view = self.world.view
        mon = view.monitoring
        n = self.city.num_nodes
        estimates = mon.estimates if mon.estimates is not None else np.zeros((n, 3))
        up = mon.sensors_up_share
        detected_open = np.bincount(mon.open.node[mon.open.detected], minlength=n)
        recent = mon.recent_detections
        nodes = np.column_stack(
            [
                self._static,
                estimates,
                up,
                recent / (1.0 + recent),
                detected_open / 3.0,
                view.allocation / max(self.budget_units, 1e-9),
                mon.installed[:, 1] > 0,
                mon.risk_history,
                mon.unwatched / mon.unwatched_max_min,
                mon.anomaly.max(axis=1) / ANOMALY_SCALE,
            ]
        )
        step = view.step_index
        intensity = view.datacentre_g_per_kwh
        steps_per_h = max(round(60.0 / view.dt_min), 1)
        ahead = np.minimum(step + np.arange(1, 3 * steps_per_h + 1), view.num_steps - 1)
        now = intensity[min(step, view.num_steps - 1)]
        hour = view.hour_local(view.now_min)
        compute = self.scenario.compute
        globals_ = np.array(
            [
                np.sin(2 * np.pi * hour / 24),
                np.cos(2 * np.pi * hour / 24),
                now / 1000.0,
                intensity[ahead[steps_per_h - 1]] / 1000.0,
                intensity[ahead].mean() / 1000.0,
                self.budget_units / n,
                step / view.num_steps,
                compute.price_per_kwh,
                compute.carbon_price_per_t / 1000.0 * self.scenario.reward.carbon_weight,
                view.compute_budget_left,
            ]
        )
        return {
            "nodes": np.clip(nodes, 0.0, FEATURE_MAX).astype(np.float32),
            "globals": np.clip(globals_, -1.0, FEATURE_MAX).astype(np.float32),
        }


def with_carbon_weight(scenario: Scenario, weight: Any) -> Scenario:
    """``scenario`` with the reward's ``carbon_weight`` (reset option ``carbon_weight``);
    `SimcityError` unless it is a number >= 0."""
    try:
        value = float(weight)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise SimcityError(
            f"is {weight!r}", field="options.carbon_weight", expected="a number >= 0"
        )
    reward = scenario.reward.model_copy(update={"carbon_weight": value})
    return scenario.model_copy(update={"reward": reward})
