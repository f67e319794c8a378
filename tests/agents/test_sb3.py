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


# -- agents.references.sb3: the tuned reference and its policy ---------------------------

from agents.references.sb3 import (  # noqa: E402
    META_NAME,
    MODEL_NAME,
    VECNORM_NAME,
    SB3Policy,
    SoftmaxActions,
    train_sb3,
    tuned_sb3_config,
)
from agents.training.evaluate import run_episode  # noqa: E402
from simcity.env import CityEnv  # noqa: E402

TUNED_STEPS = 768  # two rollouts of 4 envs x 96 steps (after one, the linear rate is 0)


def test_softmax_actions_maps_a_known_action_to_known_weights() -> None:
    env = SoftmaxActions(CityEnv(short_tiny()))  # 16 nodes: K = 17 slots, temperature ln 17
    K = 17
    assert env.action_space.shape == (K,)
    assert env.action_space.dtype == np.float32
    assert (env.action_space.low == -1.0).all() and (env.action_space.high == 1.0).all()
    assert env.temperature == pytest.approx(np.log(K))
    action = np.zeros(K, np.float32)
    action[0], action[1] = 1.0, -1.0
    # exp(+ln 17) = 17, exp(-ln 17) = 1/17, fifteen slots at exp(0) = 1: the sum is 545/17.
    expected = np.full(K, 17 / 545)
    expected[0], expected[1] = 289 / 545, 1 / 545
    weights = env.action(action)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    # Out of range values count as the bound (SB3 clips its samples the same way).
    np.testing.assert_allclose(env.action(action * 5.0), expected, rtol=1e-12)
    # What the env then spends: node 0 holds 289/545 of the budget, the unused slot 17/545.
    budget = env.unwrapped.budget_units
    units = env.unwrapped.allocation(weights)
    assert units[0] == pytest.approx(budget * 289 / 545)
    assert units.sum() == pytest.approx(budget * (1 - 17 / 545))
    # All zeros is the even split over the K slots.
    np.testing.assert_allclose(env.action(np.zeros(K)), np.full(K, 1 / K), rtol=1e-12)


class Recording:
    """A policy that plays another and keeps the actions it played."""

    def __init__(self, policy: SB3Policy) -> None:
        self.policy, self.name = policy, policy.name
        self.flops_per_decision = policy.flops_per_decision
        self.actions: list[np.ndarray] = []

    def reset(self, seed: int | None) -> None:
        self.policy.reset(seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.actions.append(self.policy.act(obs))
        return self.actions[-1]


def _parameters(run_dir: object) -> dict[str, torch.Tensor]:
    return sb3.PPO.load(f"{run_dir}/{MODEL_NAME}", device="cpu").policy.state_dict()


def test_tuned_run_saves_a_policy_that_replays_a_day_bit_for_bit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stats = train_sb3(short_tiny(), TUNED_STEPS, tmp_path / "a", tuned=True, seed=3)
    assert stats["steps"] == TUNED_STEPS and stats["steps_per_s"] > 0
    for name in (MODEL_NAME, VECNORM_NAME, META_NAME):
        assert (tmp_path / "a" / name).is_file()
    # Training from one seed is reproducible, and it moved the weights off their start.
    train_sb3(short_tiny(), TUNED_STEPS, tmp_path / "b", tuned=True, seed=3)
    first, again = _parameters(tmp_path / "a"), _parameters(tmp_path / "b")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.all(first["log_std"] == tuned_sb3_config().log_std_init)
    fresh = sb3.PPO.load(f"{tmp_path / 'a'}/{MODEL_NAME}", device="cpu")
    assert fresh.num_timesteps == TUNED_STEPS

    env = CityEnv(short_tiny())
    policy = SB3Policy(tmp_path / "a", env)
    assert policy.name == "sb3_tuned" and policy.flops_per_decision > 0
    # The saved statistics are the run's (4 envs x 96 steps and the resets), and act uses
    # them: by hand, the mean of the Gaussian on the normalised observation, then softmax.
    rms = policy.vecnorm.obs_rms
    assert rms["nodes"].count > TUNED_STEPS
    obs, _ = env.reset(seed=2**33)
    normalised = {
        key: np.clip((obs[key] - rms[key].mean) / np.sqrt(rms[key].var + 1e-8), -10, 10)
        for key in obs
    }
    tensor_obs, _ = fresh.policy.obs_to_tensor(normalised)
    with torch.no_grad():
        mean = fresh.policy.get_distribution(tensor_obs).distribution.mean.numpy()[0]
    logits = np.clip(mean, -1, 1).astype(np.float64) * np.log(17)
    by_hand = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(policy.act(obs), by_hand, rtol=1e-5)

    # A day, twice from one seed: the same actions and the same costs, bit for bit.
    first_day, second_day = Recording(policy), Recording(policy)
    days = [run_episode(env, first_day, 5), run_episode(env, second_day, 5)]
    actions = [first_day.actions, second_day.actions]
    assert len(actions[0]) == STEPS_PER_DAY
    assert all(np.array_equal(a, b) for a, b in zip(*actions, strict=True))
    assert days[0].infos == days[1].infos
    for weights in actions[0]:
        assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)


def test_defaults_variant_is_sb3_as_it_comes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stats = train_sb3(short_tiny(), 100, tmp_path, tuned=False)
    assert stats["steps"] == 2_048  # SB3's default rollout: n_steps 2048, one env
    assert not (tmp_path / VECNORM_NAME).exists()
    model = sb3.PPO.load(tmp_path / MODEL_NAME, device="cpu")
    assert model.gamma == 0.99 and model.n_epochs == 10 and model.batch_size == 64
    env = CityEnv(short_tiny())
    policy = SB3Policy(tmp_path, env)
    assert policy.name == "sb3_defaults" and policy.vecnorm is None
    obs, _ = env.reset(seed=1)
    weights = policy.act(obs)
    assert weights.shape == (17,) and ((weights >= 0) & (weights <= 1)).all()
