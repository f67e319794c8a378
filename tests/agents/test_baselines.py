"""Baselines: valid actions, their definitions, the clairvoyant reference.

The env contract they rely on: `tests/simcity/test_env.py`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from toy_incidents import overloads_at

import simcity  # noqa: F401 (registers simcity/CityMonitoring-v0)
from agents.policies.baselines import ALARM_GAIN, BASELINES, make_baseline
from agents.policies.protocol import Policy
from simcity.config.scenario import load_scenario
from simcity.env import NODE_FEATURES, CityEnv
from simcity.errors import SimcityError
from simcity.monitoring import incidents as inc

TINY_NODES = 16


@pytest.fixture(scope="module")
def tiny() -> CityEnv:
    return CityEnv("tiny")


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
    # Alarm: those weights times exp(ALARM_GAIN S), S = 5 x the anomaly feature (2 at node 5).
    # Posterior: times the unwatched feature too (1 at node 6, 0.5 elsewhere).
    nodes[5, NODE_FEATURES.index("anomaly")] = 0.4
    nodes[:, NODE_FEATURES.index("unwatched")] = 0.5
    nodes[6, NODE_FEATURES.index("unwatched")] = 1.0
    alarm = make_baseline("alarm", tiny).act({"nodes": nodes, "globals": obs["globals"]})
    weights[5] *= math.exp(ALARM_GAIN * 2.0)
    np.testing.assert_allclose(alarm[:-1] / alarm.sum(), weights / weights.sum(), rtol=1e-5)
    posterior = make_baseline("posterior", tiny).act({"nodes": nodes, "globals": obs["globals"]})
    weights[6] *= 2.0
    np.testing.assert_allclose(posterior[:-1] / posterior.sum(), weights / weights.sum(), rtol=1e-5)
    assert alarm[-1] == posterior[-1] == 0.0


def test_clairvoyant_goes_to_the_open_undetected_incident() -> None:
    env = CityEnv("tiny")
    obs, _ = env.reset(seed=0)
    clairvoyant = make_baseline("clairvoyant", env)
    obs, *_ = env.step(clairvoyant.act(obs))
    assert env.world is not None
    mon = env.world.monitoring
    env.world.intervene(
        open_incidents=inc.Incidents.concat(mon.open, overloads_at(10, 1, env.world.env.now, 1.0))
    )
    action = clairvoyant.act(obs)
    assert np.argmax(action) == 10 and action[10] / action.sum() > 0.5


def test_unknown_baseline_names_the_known_ones(tiny: CityEnv) -> None:
    with pytest.raises(SimcityError, match="clairvoyant") as err:
        make_baseline("greedy", tiny)
    assert all(name in str(err.value) for name in BASELINES)


def test_clairvoyant_anticipates_a_scheduled_incident() -> None:
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
    clairvoyant = make_baseline("clairvoyant", env)
    for _ in range(41):  # to 10:15, the start of the interval in which the drill begins
        obs, *_ = env.step(clairvoyant.act(obs))
    assert env.world is not None
    site = int(np.argmin((env.city.lon + 97.7431) ** 2 + (env.city.lat - 30.2672) ** 2))
    action = clairvoyant.act(obs)
    assert np.argmax(action) == site and action[site] / action.sum() > 0.5
