"""The paced baselines: posterior without a budget; under a tight cap, spread over the day."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from agents.policies.baselines import make_baseline
from simcity.config.overrides import override_scenario
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv

SEED = 4


def _day(scenario: Scenario, name: str) -> list[dict[str, Any]]:
    env = CityEnv(scenario)
    policy = make_baseline(name, env, seed=0)
    obs, _ = env.reset(seed=SEED)
    policy.reset(SEED)
    infos = []
    while True:
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        infos.append(info)
        if terminated or truncated:
            return infos


@cache
def _varying() -> Scenario:
    """Tiny on a day whose grid is much cleaner at midday than at night."""
    carbon = {"source": "daily", "mean_g_per_kwh": 400.0, "amplitude_g_per_kwh": 300.0}
    return override_scenario(load_scenario("tiny"), [("carbon", carbon)])


def _capped(scenario: Scenario, share: float) -> Scenario:
    """``scenario`` with a carbon budget of ``share`` of what posterior emits in its day."""
    spent_kg = sum(i["compute_gco2"] for i in _day(scenario, "posterior")) / 1000.0
    return override_scenario(scenario, [("compute.carbon_budget_kg_per_day", share * spent_kg)])


def test_without_a_budget_the_paced_rules_are_posterior() -> None:
    scenario = override_scenario(load_scenario("tiny"), [("time.num_steps", 12)])
    posterior = _day(scenario, "posterior")
    for name in ("paced", "paced_carbon"):
        days = _day(scenario, name)
        assert [i["units_used"] for i in days] == [i["units_used"] for i in posterior]
        assert [i["cost_total"] for i in days] == [i["cost_total"] for i in posterior]


def test_the_even_rule_leaves_units_unused_early_and_never_hits_the_cap_early() -> None:
    scenario = _capped(load_scenario("tiny"), 0.4)
    budget = scenario.monitoring.budget_units
    days = _day(scenario, "paced")
    steps = len(days)
    early = days[: steps // 2]
    assert sum(i["units_used"] for i in early) < 0.6 * budget * len(early)
    assert all(i["units_refused"] == 0.0 for i in days[: steps - 4])
    assert days[steps // 2]["compute_budget_left"] > 0.2  # about half is left at midday
    assert days[-1]["compute_budget_left"] < 0.2  # and it was spent
    # Posterior meets the cap and is refused units long before the end of the day.
    refused = [k for k, i in enumerate(_day(scenario, "posterior")) if i["units_refused"] > 0]
    assert refused and refused[0] < steps // 2


def test_the_carbon_rule_uses_more_units_where_the_grid_is_cleaner() -> None:
    scenario = _capped(_varying(), 0.4)
    days = _day(scenario, "paced_carbon")
    intensity = np.array([i["datacentre_g_per_kwh"] for i in days])
    units = np.array([i["units_used"] for i in days])
    clean = intensity <= np.quantile(intensity, 0.25)
    dirty = intensity >= np.quantile(intensity, 0.75)
    assert units[clean].mean() > 1.5 * units[dirty].mean()
    even = np.array([i["units_used"] for i in _day(scenario, "paced")])
    carbon_aware_kg = sum(i["compute_gco2"] for i in days) / units.sum()
    even_kg = sum(i["compute_gco2"] for i in _day(scenario, "paced")) / even.sum()
    assert carbon_aware_kg < even_kg  # less carbon per unit used
