"""`CityParallelEnv`: PettingZoo's parallel API test, and the agents' bids split the budget
as `CityEnv` splits its action."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")  # the marl extra (in dev)

from pettingzoo.test import parallel_api_test

from simcity.config.scenario import Scenario, load_scenario
from simcity.env import GLOBAL_FEATURES, NODE_FEATURES, CityEnv
from simcity.errors import SimcityError
from simcity.marl import CityParallelEnv

TINY_NODES = 16


def short(name: str, num_steps: int) -> Scenario:
    scenario = load_scenario(name)
    time = scenario.time.model_copy(update={"num_steps": num_steps})
    return scenario.model_copy(update={"time": time})


def test_parallel_api_test_passes() -> None:
    env = CityParallelEnv(short("tiny", 6))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=20)
    # PettingZoo reports soft failures as warnings; ours is the one for its {"options": 1}.
    messages = [str(w.message) for w in caught]
    assert messages == [
        "reset options options are not CityEnv's; ignored (known: "
        "policy_flop_per_decision, policy_device, policy_latency_s, "
        "policy_precision, carbon_weight)"
    ]


def test_agents_are_nodes_and_see_their_row() -> None:
    env = CityParallelEnv(short("tiny", 2))
    obs, infos = env.reset(seed=0)
    assert env.agents == [f"node_{i}" for i in range(TINY_NODES)] == list(obs) == list(infos)
    assert obs["node_3"]["node"].shape == (len(NODE_FEATURES),)
    assert obs["node_3"]["globals"].shape == (len(GLOBAL_FEATURES),)
    assert (
        env.state().shape
        == env.state_space.shape
        == (TINY_NODES * len(NODE_FEATURES) + len(GLOBAL_FEATURES),)
    )
    assert env.observation_space("node_3").contains(obs["node_3"])


@pytest.mark.parametrize("unused_weight", [0.0, 4.0])
def test_bids_are_cityenvs_action_with_a_fixed_unused_slot(unused_weight: float) -> None:
    """The same day as CityEnv fed the joint action, bit for bit; node i gets
    budget * w_i / (sum(w) + unused_weight)."""
    scenario = short("tiny", 3)
    par = CityParallelEnv(scenario, unused_weight=unused_weight)
    single = CityEnv(scenario)
    rng = np.random.default_rng(0)
    par_obs, _ = par.reset(seed=7)
    obs, _ = single.reset(seed=7)
    while par.agents:
        bids = {agent: rng.random(1).astype(np.float32) for agent in par.agents}
        weights = np.array([bids[f"node_{i}"][0] for i in range(TINY_NODES)], dtype=np.float64)
        par_obs, rewards, _, truncated, infos = par.step(bids)
        obs, reward, _, done, info = single.step(np.append(weights, unused_weight))
        assert set(rewards.values()) == {reward}  # a common payoff
        assert all(truncated.values()) == done
        np.testing.assert_array_equal(par_obs["node_5"]["node"], obs["nodes"][5])
        units = np.array([infos[f"node_{i}"]["units"] for i in range(TINY_NODES)])
        budget = scenario.monitoring.budget_units
        np.testing.assert_allclose(units, budget * weights / (weights.sum() + unused_weight))
        cost = [infos[f"node_{i}"]["node_cost"] for i in range(TINY_NODES)]
        np.testing.assert_array_equal(cost, info["node_cost"])
    assert par.agents == []  # the day ended for every agent at once


def test_silent_agents_bid_nothing_and_bad_bids_raise() -> None:
    env = CityParallelEnv(short("tiny", 3))
    env.reset(seed=0)
    _, _, _, _, infos = env.step({"node_2": np.array([1.0], dtype=np.float32)})
    budget = env.env.budget_units
    assert infos["node_2"]["units"] == budget and infos["node_0"]["units"] == 0.0
    with pytest.raises(ValueError, match="shape"):
        env.step({"node_2": np.ones(2, dtype=np.float32)})
    with pytest.raises(ValueError, match="live agent"):
        env.step({"node_99": np.ones(1, dtype=np.float32)})
    with pytest.raises(SimcityError, match="carbon_weight"):
        env.reset(seed=0, options={"carbon_weight": -1})
    with pytest.raises(SimcityError, match="unused_weight"):
        CityParallelEnv(short("tiny", 3), unused_weight=-1.0)


def test_renders_the_city() -> None:
    env = CityParallelEnv(short("tiny", 2), render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert image is not None and image.dtype == np.uint8 and image.ndim == 3
