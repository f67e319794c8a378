"""The Gymnasium env: actions into allocations, detection and costs, the API contract.

Valid actions never exceed the budget; bad ones raise; the detection hazard and the cost
terms by hand; `check_env` on every bundled scenario; same seed, same trajectory, bit for
bit; vector envs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from toy_incidents import overloads_at

import simcity  # noqa: F401 (registers simcity/CityMonitoring-v0)
from simcity.config.devices import device_profile
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
        env.world.intervene(open_incidents=inc.Incidents.concat(mon.open, table))
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
    env.reset(seed=2)
    rng = np.random.default_rng(0)  # Dirichlet(1) weights over every slot, as `random` plays
    for _ in range(12):
        _, reward, _, _, info = env.step(rng.dirichlet(np.ones(17)))
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
    num_actions = first.action_space.shape[0]  # N + 1, or N * T + 1 with analytics tiers
    actions = np.random.default_rng(0).dirichlet(np.ones(num_actions), size=num_steps)
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


# -- the policy's compute bill -------------------------------------------------------------


def test_every_billed_figure_says_where_it_came_from() -> None:
    """A heuristic (no FLOPs) bills only datasheet analytics; a policy with FLOPs is billed
    on its device's profile, or as measured when its latency is given."""
    env = CityEnv(short("tiny", 2))
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones(TINY_NODES + 1))
    assert (info["compute_source"], info["compute_policy_source"]) == ("datasheet", "none")
    assert info["compute_policy_s"] == 0.0 and info["compute_policy_kwh"] == 0.0
    env.reset(seed=0, options={"policy_flop_per_decision": 9e6, "policy_device": "t4"})
    _, _, _, _, info = env.step(np.ones(TINY_NODES + 1))
    assert info["compute_policy_source"] == "datasheet"
    t4 = device_profile("t4")
    assert info["compute_policy_s"] == t4.call_seconds(9e6) == t4.call_overhead_s
    pue = env.scenario.compute.pue
    expected_kwh = t4.call_energy_j(t4.call_seconds(9e6)) / 3.6e6 * pue
    assert info["compute_policy_kwh"] == pytest.approx(expected_kwh, rel=1e-12)
    env.reset(seed=0, options={"policy_latency_s": 2e-3})
    _, _, _, _, info = env.step(np.ones(TINY_NODES + 1))
    assert info["compute_policy_source"] == "measured" and info["compute_policy_s"] == 2e-3


def test_an_int8_policy_on_a_device_without_int8_is_refused(tmp_path: Path) -> None:
    devices = tmp_path / "devices.toml"
    table = "peak_flop_s = 1e14\nutilisation = 0.4\nidle_power_w = 20.0\nmax_power_w = 70.0\n"
    devices.write_text(
        f'[fp_only]\nprecision = "fp16"\n{table}formats = ["fp32", "fp16"]\n'
        f'[cpu_int8]\nprecision = "fp32"\n{table}formats = ["fp32", "int8"]\n'
    )
    scenario = short("tiny", 2)
    compute = scenario.compute.model_copy(update={"devices_file": devices, "device": "fp_only"})
    env = CityEnv(scenario.model_copy(update={"compute": compute}))
    options = {"policy_flop_per_decision": 9e6, "policy_precision": "int8"}
    env.reset(seed=0, options={**options, "policy_device": "cpu_int8"})
    env.step(np.ones(TINY_NODES + 1))
    with pytest.raises(SimcityError, match="does not run int8"):  # at reset, not at step
        env.reset(seed=0, options={**options, "policy_device": "fp_only"})
