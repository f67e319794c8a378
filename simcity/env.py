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
    energy cost + carbon cost x carbon_weight + travel delay cost), times ``reward.scale``.
    `info` carries every term and its physical quantity (``cost_delay`` is
    ``reward.delay_cost_per_veh_h`` times ``incident_delay_veh_h``, the vehicle-hours of
    delay accidents added: `simcity.traffic.delay`; 0 by default), and ``node_cost`` (N,):
    the cost split over the nodes (each node's damage and estimation error, compute in
    proportion to its units, delay to the nodes of the accidents that cut links; it sums
    to ``cost_total`` but for compute spent with no units anywhere). It is the only array
    in `info`. The day ends with ``truncated=True``. Under a compute budget the world may
    scale an allocation down: `info` says the ``units_refused`` and the budget left
    (``compute_budget_left`` share, 1 without one; ``compute_budget_left_kg`` and
    ``compute_budget_left_kwh``, 0 without a budget of that kind).
Reset options: ``policy_flop_per_decision`` (>= 0), ``policy_device`` (a device profile
    name, or None: the scenario's ``policy_device``), ``policy_latency_s`` (>= 0 seconds,
    or None: modelled), ``policy_precision`` (a number format the policy's device runs,
    when it has FLOPs), what the policy's decisions cost; and ``carbon_weight`` (>= 0), the
    reward's carbon weight (the observation shows it). They apply to that episode only: a
    reset without an option goes back to the env's own setting (the constructor's, or the
    attribute of that name: ``env.policy_device = "t4"`` sets it for every episode after).
    ``env.scenario`` is the episode's (with its ``carbon_weight``); assigning it sets the
    env's own. The ``policy_*`` attributes stay the env's own; ``env.world.policy`` is what
    the episode bills.
    They are checked at reset as the constructor checks its arguments: an unknown option
    or a bad value raises `SimcityError` there, not at the next step.
Episode length: a day, the scenario's ``time.num_steps`` (96 steps of 15 minutes in
    ``downtown``, the default); the env truncates it itself. Made with `gymnasium.make`,
    ``env.spec.max_episode_steps`` is that day: the spec is set per env, since it depends
    on the scenario, and the registered spec's is None. ``gymnasium.make(...,
    max_episode_steps=k)`` adds a `TimeLimit` of k steps, which the spec then shows.
Rendering: ``render_mode="rgb_array"`` makes `render` return the city at the current
    step as an (H, W, 3) uint8 image: roads by volume over capacity, nodes by the units
    they hold (`simcity.render`; matplotlib is imported on the first render only).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.compute.bill import PolicyCompute
from simcity.config.devices import check_nonnegative, device_profile
from simcity.config.scenario import Scenario, load_scenario
from simcity.errors import SimcityError
from simcity.traffic.delay import delay_shares
from simcity.world import StepRecord, World

if TYPE_CHECKING:
    from gymnasium.envs.registration import EnvSpec

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
RESET_OPTIONS: tuple[str, ...] = (
    "policy_flop_per_decision",
    "policy_device",
    "policy_latency_s",
    "policy_precision",
    "carbon_weight",
)
RENDER_MODES: tuple[str, ...] = ("rgb_array",)


class Episode(NamedTuple):
    """One episode's settings: the constructor's, with that reset's options applied."""

    scenario: Scenario
    policy: PolicyCompute


class CityEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Spread a monitoring budget over a city every `dt_min` minutes; see module doc."""

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}  # noqa: RUF012

    def __init__(
        self,
        scenario: str | Path | Scenario = "downtown",
        *,
        policy_flop_per_decision: float = 0.0,
        city: City | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise SimcityError(
                f"is {render_mode!r}", field="render_mode", expected="None or 'rgb_array'"
            )
        self.render_mode = render_mode
        self._spec: EnvSpec | None = None
        self._episode_scenario: Scenario | None = None
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.city = city if city is not None else build_city(self.scenario, file=str(scenario))
        self.policy_flop_per_decision = check_nonnegative(
            "policy_flop_per_decision", policy_flop_per_decision
        )
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

    @property
    def scenario(self) -> Scenario:
        """The episode's scenario: the env's own, with that reset's ``carbon_weight``."""
        return self._episode_scenario if self._episode_scenario is not None else self._scenario

    @scenario.setter
    def scenario(self, value: Scenario) -> None:
        """The env's own scenario, for this and every later episode."""
        self._scenario = value
        self._episode_scenario = None

    @property
    def spec(self) -> EnvSpec | None:
        """Gymnasium's spec (set by `gymnasium.make`), whose ``max_episode_steps`` is this
        env's day (``scenario.time.num_steps``) unless a `TimeLimit` says otherwise."""
        if self._spec is None or self._spec.max_episode_steps is not None:
            return self._spec
        return dataclasses.replace(self._spec, max_episode_steps=self.scenario.time.num_steps)

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        self._spec = value

    # -- Gymnasium API --------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        episode = self.episode(options)  # checked before anything changes
        super().reset(seed=seed)
        self._episode_scenario = (
            episode.scenario if episode.scenario is not self._scenario else None
        )
        self.world = World(episode.scenario, self.city, rng=self.np_random, policy=episode.policy)
        return self._observation(), {"step": 0}

    def render(self) -> np.ndarray | None:
        """The city at the current step as an (H, W, 3) uint8 image with
        ``render_mode="rgb_array"`` (before the first reset: the empty roads); None
        without a render mode."""
        if self.render_mode is None:
            return None
        from simcity.render import render_city

        city = self.city
        if self.world is None:
            flows, capacity = np.zeros(city.num_links), city.capacity_veh_h
            units, step, hour = np.zeros(city.num_nodes), 0, self.scenario.time.start_hour
        else:
            view = self.world.view
            traffic = view.traffic
            flows = traffic.flows_veh_h
            snapshot = traffic.snapshot
            capacity = snapshot.capacity_veh_h if snapshot is not None else city.capacity_veh_h
            units, step, hour = view.allocation, view.step_index, view.hour_local(view.now_min)
        v_over_c = flows / np.maximum(capacity, 1e-9)
        title = (
            f"{self.scenario.name}  step {step}/{self.scenario.time.num_steps}  "
            f"{int(hour):02d}:{round(hour % 1 * 60) % 60:02d}"
        )
        return render_city(
            city.lon,
            city.lat,
            city.link_tail,
            city.link_head,
            v_over_c,
            units,
            self.budget_units,
            title=title,
        )

    def episode(self, options: Mapping[str, Any] | None = None) -> Episode:
        """The settings of an episode reset with ``options``: the env's own, with those
        options applied (see module doc); `SimcityError` for an unknown option or a bad
        value."""
        options = {} if options is None else options
        if not isinstance(options, Mapping):
            raise SimcityError(
                f"is {type(options).__name__}", field="options", expected="a dict or None"
            )
        unknown = sorted(str(key) for key in options if key not in RESET_OPTIONS)
        if unknown:
            raise SimcityError(
                "unknown reset option " + ", ".join(repr(key) for key in unknown),
                field="options",
                expected="options among " + ", ".join(RESET_OPTIONS),
            )
        flop = self.policy_flop_per_decision
        if "policy_flop_per_decision" in options:
            flop = check_nonnegative(
                "options.policy_flop_per_decision", options["policy_flop_per_decision"]
            )
        latency = options.get("policy_latency_s", self.policy_latency_s)
        if latency is not None:
            field = (
                "options.policy_latency_s" if "policy_latency_s" in options else "policy_latency_s"
            )
            latency = check_nonnegative(field, latency)
        device = options.get("policy_device", self.policy_device)
        precision = options.get("policy_precision", self.policy_precision)
        scenario = self._scenario
        if "carbon_weight" in options:
            scenario = with_carbon_weight(scenario, options["carbon_weight"])
        policy = self._policy_compute(
            flop,
            device,
            latency,
            precision,
            device_field="options.policy_device" if "policy_device" in options else None,
            precision_field="options.policy_precision" if "policy_precision" in options else None,
        )
        return Episode(scenario, policy)

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
        scenario's ``[compute] policy_device``); `SimcityError` for an unknown device, a
        negative latency or a format the device does not run."""
        return self.episode().policy

    def _policy_compute(
        self,
        flop: float,
        device_name: Any,
        latency_s: float | None,
        precision: Any,
        *,
        device_field: str | None,
        precision_field: str | None,
    ) -> PolicyCompute:
        compute = self._scenario.compute
        name = device_name if device_name is not None else compute.policy_device
        device = None
        if name is not None:
            if not isinstance(name, str):
                raise SimcityError(
                    f"is {name!r}", field=device_field or "policy_device", expected="a device name"
                )
            try:
                device = device_profile(name, compute.devices_file)
            except SimcityError as err:
                if device_field is None:
                    raise
                raise SimcityError(
                    err.message, file=err.file, field=device_field, expected=err.expected
                ) from None
        if not isinstance(precision, str):
            raise SimcityError(
                f"is {precision!r}",
                field=precision_field or "policy_precision",
                expected="a number format such as 'fp32' or 'int8'",
            )
        runs_on = (
            device if device is not None else device_profile(compute.device, compute.devices_file)
        )
        if flop > 0.0 and not runs_on.executes(precision):  # the bill would refuse it at step
            raise SimcityError(
                f"device {runs_on.name!r} does not run {precision}",
                field=precision_field or device_field or "policy_precision",
                expected="a device whose formats include it: "
                + ", ".join(runs_on.executed_formats),
            )
        return PolicyCompute(flop, device, latency_s, precision)

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
        delay = reward_cfg.delay_cost_per_veh_h * record.incident_delay_veh_h
        traffic = self.world.traffic if self.world is not None else None
        if delay > 0 and traffic is not None:
            city = self.city
            node_cost = node_cost + delay * delay_shares(traffic, city.link_head, city.num_nodes)
        info.update(
            cost_damage=record.damage,
            cost_estimation=estimation,
            cost_energy=record.compute_energy_cost,
            cost_carbon=carbon,
            cost_delay=delay,
            cost_total=record.damage + estimation + record.compute_energy_cost + carbon + delay,
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
        scenario = self.scenario
        compute = scenario.compute
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
                compute.carbon_price_per_t / 1000.0 * scenario.reward.carbon_weight,
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
