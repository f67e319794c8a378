"""Baselines and the env contract: valid actions, budgets, costs, determinism, vector envs."""

from __future__ import annotations

import math
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import simcity  # noqa: F401 (registers simcity/CityMonitoring-v0)
from agents.policies.baselines import BASELINES, make_baseline
from agents.policies.protocol import Policy
from simcity.config.scenario import Scenario, bundled_scenarios, load_scenario
from simcity.env import NODE_FEATURES, CityEnv
from simcity.errors import SimcityError
from simcity.monitoring import incidents as inc

TINY_NODES = 16


def short(name: str, num_steps: int) -> Scenario:
    """A bundled scenario cut to its first ``num_steps`` steps."""
    scenario = load_scenario(name)
    time = scenario.time.model_copy(update={"num_steps": num_steps})
    return scenario.model_copy(update={"time": time})


@pytest.fixture(scope="module")
def tiny() -> CityEnv:
    return CityEnv("tiny")


def overloads_at(node: int, count: int, now: float, marker: float) -> inc.Incidents:
    """``count`` grid overloads at ``node`` that stay open all day; ``marker`` as severity."""
    return inc.Incidents(
        kind=np.full(count, inc.GRID_OVERLOAD),
        node=np.full(count, node),
        link=np.full(count, -1),
        severity=np.full(count, marker),
        start_min=np.full(count, now),
        end_min=np.full(count, 1e6),
        damage_per_min=np.full(count, 50.0),
        detected_min=np.full(count, np.nan),
        damage=np.zeros(count),
        clock=np.random.default_rng([node, count]).exponential(1.0, size=count),
    )


# -- baselines -------------------------------------------------------------------------


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_gives_valid_actions_through_a_day_start(tiny: CityEnv, name: str) -> None:
    policy = make_baseline(name, tiny, seed=3)
    assert isinstance(policy, Policy) and policy.name == name
    obs, _ = tiny.reset(seed=5)
    policy.reset(5)
    for _ in range(8):
        action = policy.act(obs)
        assert action.shape == (TINY_NODES + 1,)
        assert np.isfinite(action).all() and (action >= 0).all() and action.sum() > 0
        obs, *_ = tiny.step(action)


def test_random_is_seeded_and_varies() -> None:
    env = CityEnv("tiny")
    obs, _ = env.reset(seed=0)
    a, b = make_baseline("random", env, seed=1), make_baseline("random", env, seed=1)
    a.reset(7)
    b.reset(7)
    first = a.act(obs)
    np.testing.assert_array_equal(first, b.act(obs))
    assert first.sum() == pytest.approx(1.0) and first[-1] > 0  # Dirichlet over N + 1 slots
    assert not np.array_equal(first, a.act(obs))
    b.reset(8)
    assert not np.array_equal(a.act(obs), b.act(obs))


def test_static_baselines_follow_their_definitions(tiny: CityEnv) -> None:
    obs, _ = tiny.reset(seed=0)
    uniform = make_baseline("uniform", tiny).act(obs)
    np.testing.assert_array_equal(uniform, np.r_[np.ones(TINY_NODES), 0.0])
    population = make_baseline("population", tiny).act(obs)
    people = tiny.city.population + tiny.city.jobs  # 6,000 residents + 5,000 workers
    np.testing.assert_allclose(population[:-1] / population.sum(), people / 11000)
    assert population[-1] == 0.0


def test_traffic_risk_alarm_and_posterior_follow_the_features(tiny: CityEnv) -> None:
    obs, _ = tiny.reset(seed=0)
    nodes = np.zeros((TINY_NODES, len(NODE_FEATURES)), dtype=np.float32)
    nodes[:, NODE_FEATURES.index("population")] = 1.0
    nodes[:, NODE_FEATURES.index("jobs")] = 1.0
    nodes[3, NODE_FEATURES.index("congestion_est")] = 0.8
    nodes[4, NODE_FEATURES.index("congestion_est")] = 0.2
    traffic = make_baseline("traffic", tiny).act({"nodes": nodes, "globals": obs["globals"]})
    # c (1 + 2 c^2): 0.8 x 2.28 = 1.824 at node 3, 0.2 x 1.08 = 0.216 at node 4.
    assert traffic[3] / traffic[4] == pytest.approx(1.824 / 0.216) and traffic[0] == 0.0
    # Risk prior: traffic shares 1.824/2.04 = 0.89412 and 0.10588 at nodes 3 and 4, no
    # emissions, and equal overload shares 1/16 everywhere (all loads estimated 0).
    # Three recent detections at node 9 (feature 0.75) multiply its 1/16 by 1 + 3.
    # The records' risk factor multiplies: 1 everywhere but 2.5 at node 3.
    nodes[9, NODE_FEATURES.index("recent_detections")] = 0.75
    nodes[:, NODE_FEATURES.index("risk_history")] = 1.0
    nodes[3, NODE_FEATURES.index("risk_history")] = 2.5
    risk = make_baseline("risk", tiny).act({"nodes": nodes, "globals": obs["globals"]})
    weights = np.full(TINY_NODES, 0.0625)
    weights[3] += 0.894118
    weights[4] += 0.105882
    weights[3] *= 2.5
    weights[9] *= 4.0
    np.testing.assert_allclose(risk[:-1] / risk.sum(), weights / weights.sum(), rtol=1e-5)
    # Alarm: those weights times exp(0.5 S), S = 5 x the anomaly feature (2 at node 5).
    # Posterior: times the unwatched feature too (1 at node 6, 0.5 elsewhere).
    nodes[5, NODE_FEATURES.index("anomaly")] = 0.4
    nodes[:, NODE_FEATURES.index("unwatched")] = 0.5
    nodes[6, NODE_FEATURES.index("unwatched")] = 1.0
    alarm = make_baseline("alarm", tiny).act({"nodes": nodes, "globals": obs["globals"]})
    weights[5] *= math.e
    np.testing.assert_allclose(alarm[:-1] / alarm.sum(), weights / weights.sum(), rtol=1e-5)
    posterior = make_baseline("posterior", tiny).act({"nodes": nodes, "globals": obs["globals"]})
    weights[6] *= 2.0
    np.testing.assert_allclose(posterior[:-1] / posterior.sum(), weights / weights.sum(), rtol=1e-5)
    assert alarm[-1] == posterior[-1] == 0.0


def test_oracle_goes_to_the_open_undetected_incident() -> None:
    env = CityEnv("tiny")
    obs, _ = env.reset(seed=0)
    oracle = make_baseline("oracle", env)
    obs, *_ = env.step(oracle.act(obs))
    assert env.world is not None
    mon = env.world.monitoring
    mon.open = inc.Incidents.concat(mon.open, overloads_at(10, 1, env.world.env.now, 1.0))
    action = oracle.act(obs)
    assert np.argmax(action) == 10 and action[10] / action.sum() > 0.5


def test_unknown_baseline_names_the_known_ones(tiny: CityEnv) -> None:
    with pytest.raises(SimcityError, match="oracle") as err:
        make_baseline("greedy", tiny)
    assert all(name in str(err.value) for name in BASELINES)


# -- actions and allocation ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    arrays(
        np.float64,
        TINY_NODES + 1,
        elements=st.floats(-1e100, 1e100, allow_nan=False, allow_subnormal=True),
    )
)
def test_allocations_never_exceed_the_budget(tiny: CityEnv, action: np.ndarray) -> None:
    budget = tiny.budget_units
    allocation = tiny.allocation(action)
    assert allocation.shape == (TINY_NODES,)
    assert (allocation >= 0).all() and allocation.sum() <= budget * (1 + 1e-12)
    weights = np.maximum(action, 0.0)
    if weights[:-1].sum() > 0 and weights[-1] == 0:
        assert allocation.sum() == pytest.approx(budget, rel=1e-12)


@pytest.mark.parametrize(
    "action",
    [
        np.r_[np.nan, np.ones(TINY_NODES)],
        np.r_[np.inf, np.ones(TINY_NODES)],
        np.r_[-np.inf, np.ones(TINY_NODES)],
        np.ones(TINY_NODES),
        np.ones(TINY_NODES + 2),
        np.ones((1, TINY_NODES + 1)),
    ],
    ids=["nan", "inf", "-inf", "short", "long", "2d"],
)
def test_bad_actions_raise(tiny: CityEnv, action: np.ndarray) -> None:
    tiny.reset(seed=0)
    with pytest.raises(ValueError):
        tiny.step(action)


def test_negative_weights_count_as_zero(tiny: CityEnv) -> None:
    action = np.r_[np.full(TINY_NODES - 1, -3.0), 1.0, 1.0]
    np.testing.assert_array_equal(tiny.allocation(action), np.r_[np.zeros(TINY_NODES - 1), 10.0])
    assert not tiny.allocation(-np.ones(TINY_NODES + 1)).any()


# -- detection and costs -----------------------------------------------------------------


def test_detection_probability_by_hand() -> None:
    # 20 units at a node, its 4 neighbours average 1, half its sensors up (defaults):
    # h = 0.004 + 0.5 * (0.01 + 0.08 * (20 + 0.25 * 1)) = 0.819 /min
    # and at a neighbour with none of its own, seeing the 20 as 1/4 of its mean:
    # h = 0.004 + 1.0 * (0.01 + 0.08 * (0 + 0.25 * 5)) = 0.114 /min.
    hazard = inc.detection_hazard_per_min(
        np.array([20.0, 0.0]),
        np.array([1.0, 5.0]),
        np.array([0.5, 1.0]),
        report_per_min=0.004,
        sensor_per_min=0.01,
        unit_per_min=0.08,
        spill=0.25,
    )
    np.testing.assert_allclose(hazard, [0.819, 0.114], rtol=1e-12)
    p = inc.detection_probability(hazard, 15.0)
    np.testing.assert_allclose(p, [1 - math.exp(-12.285), 1 - math.exp(-1.71)], rtol=1e-12)
    assert p[1] == pytest.approx(0.819134, abs=1e-6)


def test_a_step_detects_at_the_allocations_hazard() -> None:
    # Tiny is a 4 x 4 grid: node 5 has neighbours 1, 4, 6, 9; node 15 is a far corner.
    # All 20 units on node 5. Per step of 15 min, with every energy meter up:
    # node 5: h = 0.014 + 0.08 * 20 = 1.614, P = 1 - exp(-24.21) = 1.0000
    # node 6: h = 0.014 + 0.08 * 0.25 * 20 / 4 = 0.114, P = 1 - exp(-1.71) = 0.8191
    # node 15: h = 0.014, P = 1 - exp(-0.21) = 0.1894
    scenario = load_scenario("tiny")
    monitoring = scenario.monitoring.model_copy(
        update={
            "report_per_min": 0.004,
            "sensor_per_min": 0.01,
            "unit_per_min": 0.08,
            "spill": 0.25,
        }
    )
    env = CityEnv(scenario.model_copy(update={"monitoring": monitoring}))
    env.reset(seed=0)
    assert env.world is not None
    mon, now = env.world.monitoring, env.world.env.now
    assert sorted(mon.neighbour_mean[5].indices) == [1, 4, 6, 9]
    count = 4000
    injected = [overloads_at(node, count, now, 7.5) for node in (5, 6, 15)]
    for table in injected:
        mon.open = inc.Incidents.concat(mon.open, table)
    action = np.zeros(TINY_NODES + 1)
    action[5] = 1.0
    _, _, _, _, info = env.step(action)
    assert info["units_used"] == pytest.approx(20.0)
    assert mon.sensors_up_share[[5, 6, 15], 2].tolist() == [1.0, 1.0, 1.0]
    ours = mon.all_incidents().select(mon.all_incidents().severity == 7.5)
    for node, expected in [(5, 1.0), (6, 0.8191), (15, 0.1894)]:
        share = ours.detected[ours.node == node].mean()
        assert share == pytest.approx(expected, abs=0.03)  # 5 standard errors at 4,000


def test_cost_terms_sum_to_the_reward() -> None:
    scenario = short("tiny", 12)
    reward_cfg = scenario.reward.model_copy(update={"carbon_weight": 2.5, "scale": 0.01})
    env = CityEnv(scenario.model_copy(update={"reward": reward_cfg}))
    obs, _ = env.reset(seed=2)
    policy = make_baseline("random", env, seed=0)
    policy.reset(2)
    for _ in range(12):
        obs, reward, _, _, info = env.step(policy.act(obs))
        parts = info["cost_damage"] + info["cost_estimation"] + info["cost_energy"]
        assert info["cost_total"] == pytest.approx(parts + info["cost_carbon"], rel=1e-12)
        assert info["cost_total"] * 0.01 == pytest.approx(-reward, rel=1e-12)
        assert info["cost_carbon"] == pytest.approx(2.5 * info["compute_carbon_cost"], rel=1e-12)
        assert info["cost_damage"] == info["damage"]
        assert info["cost_energy"] == info["compute_energy_cost"] > 0
        assert info["cost_estimation"] == pytest.approx(0.5 * 16 * info["estimation_error"])
        # The split over nodes: every unit of cost lands on some node (units are in use).
        assert info["node_cost"].shape == (16,) and np.all(info["node_cost"] >= 0)
        assert info["node_cost"].sum() == pytest.approx(info["cost_total"], rel=1e-9)


def test_node_cost_follows_the_incidents() -> None:
    """All damage of `toy_hotspot` is at node 9, so its node cost carries all of it."""
    env = CityEnv("toy_hotspot")
    env.reset(seed=0)
    damage = np.zeros(16)
    for _ in range(8):
        *_, info = env.step(np.ones(17))
        damage += info["node_cost"]
        assert info["damage"] == pytest.approx(info["node_cost"][9] - _not_damage(env, info, 9))
    assert damage[9] > 0 and np.delete(damage, 9).max() < 0.01 * damage[9]


def _not_damage(env: CityEnv, info: dict[str, Any], node: int) -> float:
    """Node cost other than damage: estimation error and the compute share."""
    assert env.world is not None and env.world.outcome is not None
    units = env.world.allocation
    compute = (info["cost_energy"] + info["cost_carbon"]) * units[node] / units.sum()
    return env.scenario.reward.estimation_cost * env.world.outcome.error_by_node[node] + compute


def test_unwatched_grows_unwatched_and_falls_where_watched() -> None:
    """The search belief: exact solution of du/dt = 1 - k u over each interval."""
    env = CityEnv("tiny")
    obs, _ = env.reset(seed=0)
    assert env.world is not None
    mon, cfg = env.world.monitoring, env.scenario.monitoring
    column = NODE_FEATURES.index("unwatched")
    before = mon.unwatched.copy()
    action = np.zeros(17)
    action[3] = 1.0  # the whole budget on node 3
    obs, *_ = env.step(action)
    after = mon.unwatched
    assert after[3] < before[3] and after[0] >= before[0]  # no monitoring: no faster
    np.testing.assert_allclose(obs["nodes"][:, column], after / mon.unwatched_max_min, rtol=1e-6)
    # Node 3 by hand (sensors all up on the first step): k = report + up (sensor + unit a).
    air = mon.installed[3, 1] > 0
    up = (1.0 + float(air) + 1.0) / 3.0
    k = cfg.report_per_min + up * (cfg.sensor_per_min + cfg.unit_per_min * 20.0) + 1.0 / 85.0
    expected = before[3] * np.exp(-15 * k) + (1 - np.exp(-15 * k)) / k
    assert after[3] == pytest.approx(expected, rel=1e-9)


# -- the Gymnasium contract --------------------------------------------------------------


@pytest.mark.parametrize("name", list(bundled_scenarios()))
def test_check_env_passes(name: str) -> None:
    check_env(CityEnv(name), skip_render_check=True)


def rollout(env: CityEnv, seed: int, actions: np.ndarray) -> list[Any]:
    """Everything an episode returns: obs, rewards, flags and infos, step by step."""
    obs, info = env.reset(seed=seed)
    out: list[Any] = [(obs, info)]
    for action in actions:
        out.append(env.step(action))
    return out


def assert_identical(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        obs_x, obs_y = x[0], y[0]
        for key in obs_x:
            assert obs_x[key].tobytes() == obs_y[key].tobytes()
        info_x, info_y = dict(x[-1]), dict(y[-1])
        cost_x, cost_y = info_x.pop("node_cost", None), info_y.pop("node_cost", None)
        assert (cost_x is None and cost_y is None) or cost_x.tobytes() == cost_y.tobytes()
        assert (*x[1:-1], info_x) == (*y[1:-1], info_y)  # Python floats compare exactly


@pytest.mark.parametrize("name", list(bundled_scenarios()))
def test_same_seed_same_actions_same_trajectory(name: str) -> None:
    num_steps = 6 if name == "metro" else 12  # metro: ~1 s a cold step
    scenario = short(name, num_steps)
    first = CityEnv(scenario)
    n = first.city.num_nodes
    actions = np.random.default_rng(0).dirichlet(np.ones(n + 1), size=num_steps)
    rollout(first, 1, actions)  # a different episode first: caches must not leak into results
    warm = rollout(first, 2, actions)
    cold = rollout(CityEnv(scenario), 2, actions)
    assert_identical(warm, cold)


def test_runs_in_vector_envs() -> None:
    def make() -> gymnasium.Env[Any, Any]:
        return gymnasium.make("simcity/CityMonitoring-v0", scenario="tiny")

    actions = np.random.default_rng(0).dirichlet(np.ones(TINY_NODES + 1), size=(4, 2))
    results = []
    for vector_env in (
        gymnasium.vector.SyncVectorEnv([make, make]),
        gymnasium.vector.AsyncVectorEnv([make, make]),
    ):
        try:
            obs, _ = vector_env.reset(seed=[3, 4])
            assert obs["nodes"].shape == (2, TINY_NODES, len(NODE_FEATURES))
            rewards = []
            for action in actions:
                obs, reward, terminated, truncated, _ = vector_env.step(action)
                rewards.append(reward)
                assert not terminated.any() and not truncated.any()
            results.append((obs["nodes"], np.array(rewards)))
        finally:
            vector_env.close()
    (sync_nodes, sync_rewards), (async_nodes, async_rewards) = results
    assert np.isfinite(sync_rewards).all() and (sync_rewards <= 0).all()
    np.testing.assert_array_equal(sync_nodes, async_nodes)
    np.testing.assert_array_equal(sync_rewards, async_rewards)


def test_oracle_anticipates_a_scheduled_incident() -> None:
    from simcity.config.monitoring import ScheduledIncident

    base = load_scenario("tiny")
    planned = ScheduledIncident(
        name="drill", lon=-97.7431, lat=30.2672, at="10:20", duration_min=30.0
    )
    quiet = base.incidents.model_copy(
        update={
            "accident_per_mveh_km": 0.0,
            "pollution_per_h": 0.0,
            "overload_per_mw_h": 0.0,
            "scheduled": (planned,),
        }
    )
    env = CityEnv(base.model_copy(update={"incidents": quiet}))
    obs, _ = env.reset(seed=0)
    oracle = make_baseline("oracle", env)
    for _ in range(41):  # to 10:15, the start of the interval in which the drill begins
        obs, *_ = env.step(oracle.act(obs))
    assert env.world is not None
    site = int(np.argmin((env.city.lon + 97.7431) ** 2 + (env.city.lat - 30.2672) ** 2))
    action = oracle.act(obs)
    assert np.argmax(action) == site and action[site] / action.sum() > 0.5
