"""Stable-Baselines3 interoperability: CityEnv passes SB3's env checker and PPO trains on it."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

from stable_baselines3.common.env_checker import check_env  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402

import simcity  # noqa: E402, F401 (registers simcity/CityMonitoring-v0)
from simcity.config.scenario import Scenario, load_scenario  # noqa: E402

STEPS_PER_DAY = 16
TOTAL_TIMESTEPS = 2_048


def short_tiny() -> Scenario:
    """The tiny scenario with 16-step days, so episodes end often."""
    scenario = load_scenario("tiny")
    return scenario.model_copy(
        update={"time": scenario.time.model_copy(update={"num_steps": STEPS_PER_DAY})}
    )


def make_env() -> gymnasium.Env:
    return gymnasium.make("simcity/CityMonitoring-v0", scenario=short_tiny())


def test_check_env_passes() -> None:
    env = make_env()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # SB3 reports soft problems as warnings
            check_env(env.unwrapped, warn=True, skip_render_check=True)
    finally:
        env.close()
    # Two advisory remarks are expected and harmless; any other warning is a failure:
    # ``nodes`` is (N, F), not 1-D (MultiInputPolicy's CombinedExtractor flattens it), and
    # the action Box is [0, 1], not [-1, 1] (SB3 clips PPO's Gaussian samples into it, and
    # only the ratios of the weights matter to CityEnv).
    expected = ("nodes has an unconventional shape", "symmetric and normalized Box action space")
    unexpected = [str(w.message) for w in caught if not any(e in str(w.message) for e in expected)]
    assert not unexpected, unexpected


def test_ppo_multi_input_trains_and_predicts() -> None:
    torch.set_num_threads(1)
    env = make_env()
    try:
        model = sb3.PPO(
            "MultiInputPolicy",
            env,
            n_steps=256,
            batch_size=64,
            n_epochs=2,
            seed=0,
            device="cpu",
            verbose=0,
        )
        model.learn(total_timesteps=TOTAL_TIMESTEPS)
        assert model.num_timesteps >= TOTAL_TIMESTEPS

        obs, _ = env.reset(seed=1)
        assert env.observation_space.contains(obs)
        for _ in range(STEPS_PER_DAY):
            action, _ = model.predict(obs, deterministic=True)
            assert action.shape == env.action_space.shape
            assert np.isfinite(action).all()
            assert env.action_space.contains(action.astype(np.float32))
            obs, reward, terminated, truncated, _ = env.step(action)
            assert np.isfinite(reward)
            if terminated or truncated:
                break
        assert truncated  # the day ends after STEPS_PER_DAY steps

        mean_reward, std_reward = evaluate_policy(
            model, env, n_eval_episodes=2, deterministic=True, warn=False
        )
        assert np.isfinite(mean_reward)
        assert np.isfinite(std_reward)
        assert mean_reward <= 0.0  # reward is minus a cost
    finally:
        env.close()
