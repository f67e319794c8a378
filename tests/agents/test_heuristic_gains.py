"""The heuristics read expected incident rates under their env's scenario gains."""

from __future__ import annotations

import numpy as np
import pytest

from agents.policies.baselines import make_baseline, risk_weights
from simcity.config.monitoring import IncidentConfig
from simcity.config.scenario import load_scenario
from simcity.env import NODE_FEATURES, CityEnv

HEURISTICS = ("traffic", "risk", "alarm", "posterior")


def observation(num_nodes: int) -> np.ndarray:
    """Node features where the gains matter: two congestions, two load ratios."""
    nodes = np.zeros((num_nodes, len(NODE_FEATURES)), dtype=np.float32)
    for name in ("population", "jobs", "risk_history", "unwatched"):
        nodes[:, NODE_FEATURES.index(name)] = 1.0
    nodes[[1, 2], NODE_FEATURES.index("congestion_est")] = [0.5, 1.5]
    nodes[[3, 4], NODE_FEATURES.index("load_ratio_est")] = [0.9, 1.2]
    return nodes


@pytest.mark.parametrize("name", HEURISTICS)
def test_a_heuristic_follows_its_scenarios_gains(name: str) -> None:
    scenario = load_scenario("tiny")
    gains = scenario.incidents.model_copy(update={"congestion_gain": 8.0, "overload_gain": 2.0})
    steep = CityEnv(scenario.model_copy(update={"incidents": gains}))
    plain = CityEnv(scenario)
    obs, _ = plain.reset(seed=0)
    obs = {"nodes": observation(plain.city.num_nodes), "globals": obs["globals"]}
    default = make_baseline(name, plain).act(obs)[:-1]
    other = make_baseline(name, steep).act(obs)[:-1]
    if name == "traffic":  # c (1 + g c^2) at c = 1.5 over c = 0.5: 8.25 / 0.75, or 28.5 / 1.5
        assert default[2] / default[1] == pytest.approx(8.25 / 0.75)
        assert other[2] / other[1] == pytest.approx(28.5 / 1.5)
        return
    # No evidence and the same unwatched time everywhere: the risk weights' shape, under
    # the default gains for the plain env and under the steep env's own.
    for weights, incidents in ((default, IncidentConfig()), (other, gains)):
        expected = risk_weights(obs["nodes"], incidents=incidents)
        np.testing.assert_allclose(weights / weights.sum(), expected / expected.sum(), rtol=1e-12)
    assert other[2] / other[1] > default[2] / default[1]  # a steeper congestion gain
    assert other[4] / other[3] < default[4] / default[3]  # a gentler overload gain


def test_without_a_scenario_the_default_gains_apply() -> None:
    nodes = observation(8)
    np.testing.assert_array_equal(
        risk_weights(nodes), risk_weights(nodes, incidents=IncidentConfig())
    )
