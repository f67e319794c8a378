"""The Gymnasium spec of `CityEnv`: episode length in the spec, rgb_array rendering with
`check_env`'s render check, and reset options checked at reset and for one episode only."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simcity  # noqa: F401 (registers simcity/CityMonitoring-v0)
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError

ENV_ID = "simcity/CityMonitoring-v0"
TINY_NODES = 16


def short(name: str, num_steps: int) -> Scenario:
    scenario = load_scenario(name)
    time = scenario.time.model_copy(update={"num_steps": num_steps})
    return scenario.model_copy(update={"time": time})


@pytest.fixture(scope="module")
def tiny() -> CityEnv:
    return CityEnv(short("tiny", 4))


def play(env: gymnasium.Env[Any, Any], action: np.ndarray) -> int:
    """Steps until the episode ends."""
    env.reset(seed=0)
    steps = 0
    while True:
        *_, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            return steps


# -- episode length -------------------------------------------------------------------------


def test_the_default_envs_spec_says_its_day() -> None:
    env = gymnasium.make(ENV_ID)
    assert env.spec is not None
    assert env.spec.max_episode_steps == load_scenario("downtown").time.num_steps == 96
    # It depends on the scenario, so the registry leaves it to each env.
    assert gymnasium.spec(ENV_ID).max_episode_steps is None


def test_a_shorter_day_is_in_the_spec_and_ends_the_episode() -> None:
    env = gymnasium.make(ENV_ID, scenario=short("tiny", 5))
    assert env.spec is not None and env.spec.max_episode_steps == 5
    assert play(env, np.ones(TINY_NODES + 1)) == 5
    remade = gymnasium.make(env.spec)  # the spec makes the same env again
    assert remade.spec is not None and remade.spec.max_episode_steps == 5
    assert play(remade, np.ones(TINY_NODES + 1)) == 5


def test_make_max_episode_steps_overrides_the_day() -> None:
    env = gymnasium.make(ENV_ID, scenario=short("tiny", 6), max_episode_steps=3)
    assert env.spec is not None and env.spec.max_episode_steps == 3
    assert play(env, np.ones(TINY_NODES + 1)) == 3


# -- rendering ------------------------------------------------------------------------------


def test_check_env_passes_with_its_render_check() -> None:
    env = gymnasium.make(ENV_ID, scenario=short("tiny", 4), render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports problems as warnings
        check_env(env.unwrapped)


def test_rgb_array_draws_the_current_allocation() -> None:
    env = CityEnv(short("tiny", 4), render_mode="rgb_array")
    before = env.render()
    env.reset(seed=0)
    assert isinstance(before, np.ndarray)
    assert before.dtype == np.uint8 and before.ndim == 3 and before.shape[2] == 3
    on_first = np.zeros(TINY_NODES + 1)
    on_first[0] = 1.0
    env.step(on_first)
    first = env.render()
    on_last = np.zeros(TINY_NODES + 1)
    on_last[TINY_NODES - 1] = 1.0
    env.step(on_last)
    last = env.render()
    assert first is not None and last is not None and first.shape == before.shape
    assert not np.array_equal(first, before) and not np.array_equal(first, last)
    assert len(np.unique(first.reshape(-1, 3), axis=0)) > 10  # a picture, not a blank


def test_render_modes() -> None:
    assert CityEnv(short("tiny", 2)).render() is None
    with pytest.raises(SimcityError, match="render_mode"):
        CityEnv(short("tiny", 2), render_mode="human")


# -- reset options --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"policy_flop_per_decision": -5}, "options.policy_flop_per_decision"),
        ({"policy_flop_per_decision": float("nan")}, "options.policy_flop_per_decision"),
        ({"policy_flop_per_decision": "many"}, "options.policy_flop_per_decision"),
        ({"policy_latency_s": -1e-3}, "options.policy_latency_s"),
        ({"policy_device": "abacus"}, "options.policy_device"),
        ({"policy_device": 4}, "options.policy_device"),
        ({"policy_precision": 8}, "options.policy_precision"),
        ({"policy_flop_per_decision": 1e6, "policy_precision": "fp4"}, "options.policy_precision"),
        ({"carbon_weight": -1.0}, "options.carbon_weight"),
        ({"carbon_wieght": 2.0}, "options"),
    ],
)
def test_bad_reset_options_fail_at_reset(
    tiny: CityEnv, options: dict[str, Any], field: str
) -> None:
    tiny.reset(seed=0)
    world = tiny.world
    with pytest.raises(SimcityError) as err:
        tiny.reset(seed=1, options=options)
    assert err.value.field == field
    assert tiny.world is world  # nothing changed: the episode under way goes on
    tiny.step(np.ones(TINY_NODES + 1))


def test_bad_constructor_values_raise_the_same_error() -> None:
    with pytest.raises(SimcityError) as err:
        CityEnv(short("tiny", 2), policy_flop_per_decision=-5)
    assert err.value.field == "policy_flop_per_decision"


def test_reset_options_hold_for_their_episode_only(tiny: CityEnv) -> None:
    action = np.ones(TINY_NODES + 1)
    tiny.reset(seed=0, options={"policy_flop_per_decision": 9e6, "policy_device": "t4"})
    info = tiny.step(action)[-1]
    assert info["compute_policy_source"] == "datasheet" and info["compute_policy_kwh"] > 0
    tiny.reset(seed=0)
    info = tiny.step(action)[-1]
    assert info["compute_policy_source"] == "none" and info["compute_policy_kwh"] == 0.0

    weight = tiny.scenario.reward.carbon_weight
    tiny.reset(seed=0, options={"carbon_weight": weight + 10.0})
    assert tiny.scenario.reward.carbon_weight == weight + 10.0
    tiny.reset(seed=0)
    assert tiny.scenario.reward.carbon_weight == weight


def test_the_envs_own_settings_hold_for_every_episode() -> None:
    env = CityEnv(short("tiny", 2))
    env.policy_flop_per_decision, env.policy_device = 9e6, "t4"
    for _ in range(2):
        env.reset(seed=0)
        assert env.step(np.ones(TINY_NODES + 1))[-1]["compute_policy_kwh"] > 0
    env.reset(seed=0, options={"policy_flop_per_decision": 0.0})
    assert env.step(np.ones(TINY_NODES + 1))[-1]["compute_policy_kwh"] == 0.0
