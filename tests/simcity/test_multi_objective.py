"""The multi-objective env: the reward vector is the scalar env's terms, and weighs back."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simcity  # noqa: F401 (registers simcity/CityMonitoringMO-v0)
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.multi_objective import REWARD_COMPONENTS, CityMOEnv, cost_weights, reward_vector


def priced_tiny(num_steps: int = 96) -> Scenario:
    """`tiny` with every price and weight away from 1, so a wrong weight shows."""
    scenario = load_scenario("tiny")
    compute = scenario.compute.model_copy(update={"price_per_kwh": 0.31, "carbon_price_per_t": 80})
    reward = scenario.reward.model_copy(update={"carbon_weight": 2.5, "scale": 0.01})
    time = scenario.time.model_copy(update={"num_steps": num_steps})
    return scenario.model_copy(update={"compute": compute, "reward": reward, "time": time})


def test_cost_weights_by_hand() -> None:
    assert cost_weights(load_scenario("tiny")).tolist() == [1.0, 1.0, 0.15, 100 / 1000 * 1.0, 0.0]
    # 0.31 per kWh; 80 per t = 0.08 per kg, weighed 2.5 times.
    np.testing.assert_allclose(cost_weights(priced_tiny()), [1, 1, 0.31, 0.2, 0], rtol=1e-15)


def test_vector_is_the_scalar_envs_terms_step_by_step() -> None:
    """A day of `tiny` in both envs on one seed and one set of actions."""
    scenario = priced_tiny()
    mo_env, env = CityMOEnv(scenario), CityEnv(scenario)
    assert mo_env.reward_dim == len(REWARD_COMPONENTS) == 5
    assert mo_env.reward_space.shape == (5,) and mo_env.reward_space.dtype == np.float32
    obs_mo, _ = mo_env.reset(seed=0)
    obs, _ = env.reset(seed=0)
    actions = np.random.default_rng(0).dirichlet(np.ones(17), size=96)
    weights = cost_weights(scenario)
    totals = np.zeros(5)
    for action in actions:
        obs_mo, vector, _, truncated_mo, info_mo = mo_env.step(action)
        obs, reward, _, truncated, info = env.step(action)
        assert truncated_mo == truncated
        for key in obs:
            assert obs_mo[key].tobytes() == obs[key].tobytes()
        assert info_mo["cost_total"] == info["cost_total"]
        assert vector.dtype == np.float32 and mo_env.reward_space.contains(vector)
        expected = [
            -info["cost_damage"],
            -info["cost_estimation"],
            -info["compute_kwh"],
            -info["compute_gco2"] / 1000,
            -info["incident_delay_veh_h"],
        ]
        assert vector.tolist() == np.array(expected, dtype=np.float32).tolist()
        # The weighting gives back the money, to float32 rounding of each component.
        assert vector @ weights == pytest.approx(-info["cost_total"], rel=1e-6, abs=1e-9)
        assert vector @ weights * 0.01 == pytest.approx(reward, rel=1e-6, abs=1e-11)
        totals += vector
    assert truncated
    assert np.all(totals[:4] < 0)  # damage, error, kWh, kg exercised (tiny prices no delay)
    assert totals[4] <= 0


def test_reward_vector_reads_grams_as_kilograms() -> None:
    info = {
        "cost_damage": 3.0,
        "cost_estimation": 2.0,
        "compute_kwh": 1.5,
        "compute_gco2": 750.0,
        "incident_delay_veh_h": 0.5,
    }
    assert reward_vector(info).tolist() == [-3.0, -2.0, -1.5, -0.75, -0.5]


def test_mo_gymnasium_linear_reward_gives_back_the_scalar_reward() -> None:
    mo_gymnasium = pytest.importorskip("mo_gymnasium")
    from mo_gymnasium.wrappers import LinearReward

    scenario = priced_tiny(24)
    weights = cost_weights(scenario) * scenario.reward.scale
    env = LinearReward(mo_gymnasium.make("simcity/CityMonitoringMO-v0", scenario=scenario), weights)
    scalar = CityEnv(scenario)
    env.reset(seed=1)
    scalar.reset(seed=1)
    actions = np.random.default_rng(1).dirichlet(np.ones(17), size=24)
    for action in actions:
        _, reward, _, _, info = env.step(action)
        _, expected, _, _, _ = scalar.step(action)
        assert reward == pytest.approx(expected, rel=1e-6, abs=1e-11)
        assert info["vector_reward"].shape == (5,)


def test_mo_gymnasium_vector_env_stacks_reward_vectors() -> None:
    pytest.importorskip("mo_gymnasium")
    from mo_gymnasium.wrappers.vector import MOSyncVectorEnv

    scenario = priced_tiny(4)
    envs = MOSyncVectorEnv([lambda: CityMOEnv(scenario)] * 2)
    envs.reset(seed=[0, 1])
    _, rewards, *_ = envs.step(np.ones((2, 17), dtype=np.float32))
    assert rewards.shape == (2, 5) and rewards.dtype == np.float32
    assert rewards[0, 2] == rewards[1, 2] < 0  # same units on both: same kWh


def test_registered_without_the_scalar_reward_checker() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the passive checker would warn at the first step
        env = gymnasium.make("simcity/CityMonitoringMO-v0", scenario=priced_tiny(2))
        env.reset(seed=0)
        _, vector, *_ = env.step(env.action_space.sample())
    assert isinstance(env.unwrapped, CityMOEnv)
    assert env.unwrapped.reward_space.contains(vector)


def test_check_env_passes() -> None:
    """Gymnasium's checker is single-objective: its one complaint is the vector reward."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(CityMOEnv("tiny"), skip_render_check=True)
    complaints = {str(w.message) for w in caught}
    assert all("reward returned by `step()` must be a float" in c for c in complaints), complaints


def test_make_passes_render_mode_to_the_scalar_envs_picture() -> None:
    env = gymnasium.make(
        "simcity/CityMonitoringMO-v0", scenario=priced_tiny(2), render_mode="rgb_array"
    )
    scalar = CityEnv(priced_tiny(2), render_mode="rgb_array")
    action = np.ones(env.action_space.shape) / env.action_space.shape[0]
    for each in (env, scalar):
        each.reset(seed=0)
        each.step(action)
    picture = env.render()
    assert env.unwrapped.render_mode == "rgb_array" and isinstance(picture, np.ndarray)
    assert picture.dtype == np.uint8 and picture.ndim == 3
    assert np.array_equal(picture, scalar.render())


def test_an_unknown_render_mode_is_a_user_error() -> None:
    with pytest.raises(SimcityError, match="render_mode"):
        CityMOEnv("tiny", render_mode="human")


def test_the_weighting_gives_back_the_cost_with_a_delay_term() -> None:
    """On a real city with the delay cost on, the fifth term carries it."""
    scenario = load_scenario("helsinki")
    scenario = scenario.model_copy(
        update={"time": scenario.time.model_copy(update={"num_steps": 24})}
    )
    mo_env, weights = CityMOEnv(scenario), cost_weights(scenario)
    assert weights[4] == scenario.reward.delay_cost_per_veh_h > 0
    mo_env.reset(seed=3)
    uniform = np.ones(mo_env.action_space.shape)
    for _ in range(24):
        _, vector, _, _, info = mo_env.step(uniform)
        assert vector[4] == np.float32(-info["incident_delay_veh_h"])
        np.testing.assert_allclose(vector @ weights, -info["cost_total"], rtol=1e-5, atol=1e-3)
