"""The observation's prices and budget: electricity, weighted carbon, the budget left."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from simcity.config.overrides import override_scenario
from simcity.config.scenario import load_scenario
from simcity.env import GLOBAL_FEATURES, CityEnv
from simcity.errors import SimcityError

PRICE, CARBON, LEFT = (
    GLOBAL_FEATURES.index(name)
    for name in ("price_per_kwh", "carbon_price_per_kg", "compute_budget_left")
)


def _env(changes: list[tuple[str, object]]) -> CityEnv:
    scenario = override_scenario(load_scenario("tiny"), [("time.num_steps", 8), *changes])
    return CityEnv(scenario)


def test_the_prices_reach_the_observation_with_the_scenarios_values() -> None:
    env = _env(
        [
            ("compute.price_per_kwh", 0.31),
            ("compute.carbon_price_per_t", 250.0),
            ("reward.carbon_weight", 2.0),
        ]
    )
    obs, _ = env.reset(seed=0)
    assert obs["globals"].shape == (len(GLOBAL_FEATURES),)
    assert obs["globals"][PRICE] == pytest.approx(0.31)
    assert obs["globals"][CARBON] == pytest.approx(0.25 * 2.0)
    assert obs["globals"][LEFT] == 1.0  # no budget
    obs, *_ = env.step(np.ones(env.city.num_nodes + 1))
    assert obs["globals"][LEFT] == 1.0


def test_the_carbon_weight_of_an_episode_is_a_reset_option() -> None:
    env = _env([])
    seen = []
    for weight in (0.0, 1.0, 10.0):
        obs, _ = env.reset(seed=0, options={"carbon_weight": weight})
        seen.append(float(obs["globals"][CARBON]))
        assert env.scenario.reward.carbon_weight == weight
    per_kg = env.scenario.compute.carbon_price_per_t / 1000.0
    assert seen == pytest.approx([0.0, per_kg, 10.0 * per_kg])
    with pytest.raises(SimcityError, match="carbon_weight"):
        env.reset(seed=0, options={"carbon_weight": -1.0})


def test_the_budget_left_falls_as_compute_is_spent() -> None:
    env = _env([("compute.carbon_budget_kg_per_day", 20.0)])
    obs, _ = env.reset(seed=0)
    shares = [float(obs["globals"][LEFT])]
    infos = []
    for _ in range(8):
        obs, _, _, _, info = env.step(np.ones(env.city.num_nodes + 1))
        shares.append(float(obs["globals"][LEFT]))
        infos.append(info)
    assert shares[0] == 1.0
    assert all(b < a for a, b in itertools.pairwise(shares) if a > 0.0)
    assert min(shares) >= 0.0
    spent_kg = sum(i["compute_gco2"] for i in infos) / 1000.0
    day_share = 8 * 15 / 1440
    assert infos[-1]["compute_budget_left_kg"] == pytest.approx(20.0 * day_share - spent_kg)
    assert shares[-1] == pytest.approx(infos[-1]["compute_budget_left"], abs=1e-6)
