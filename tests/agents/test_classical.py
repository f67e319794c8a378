"""The classical baselines: water-filling and Whittle indices by hand, and days in the env."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.policies.baselines import make_baseline
from agents.policies.classical import ClassicalPolicy
from agents.policies.search import (
    effort_at,
    fill_by_index,
    search_value,
    water_fill,
    whittle_index,
)
from agents.training.evaluate import run_episode
from simcity.env import GLOBAL_FEATURES, NODE_FEATURES, CityEnv

# -- water-filling -----------------------------------------------------------------------


def test_two_nodes_water_fill_by_hand() -> None:
    """w = (1, 4), a = (1, 0.5), dt = 1, B = 2: ln(1/lam) + 2 ln(2/lam) = 2, so
    lam = 2^(2/3) e^(-2/3), x_1 = -ln(lam) = 2/3 - (2/3) ln 2, x_2 = 2 - x_1."""
    fill = water_fill(np.array([1.0, 4.0]), np.array([1.0, 0.5]), 2.0, 1.0)
    x1 = 2.0 / 3.0 - 2.0 / 3.0 * math.log(2.0)
    np.testing.assert_allclose(fill.effort, [x1, 2.0 - x1], rtol=1e-12)
    assert fill.lam == pytest.approx(2.0 ** (2 / 3) * math.exp(-2 / 3), rel=1e-12)
    # Equal marginal gains w a dt exp(-a x dt) at both nodes.
    marginal = np.array([1.0, 2.0]) * np.exp(-np.array([1.0, 0.5]) * fill.effort)
    np.testing.assert_allclose(marginal, fill.lam, rtol=1e-12)


def test_a_node_worth_less_than_the_shadow_price_gets_nothing() -> None:
    """w = (1, 0.01), a = 1, B = 1: all on node 1 gives lam = e^-1 > 0.01, node 2's first
    unit's gain."""
    fill = water_fill(np.array([1.0, 0.01]), np.ones(2), 1.0, 1.0)
    np.testing.assert_allclose(fill.effort, [1.0, 0.0], atol=1e-12)
    assert fill.lam == pytest.approx(math.exp(-1.0), rel=1e-12)


def test_units_gaining_less_than_their_price_stay_unused() -> None:
    """B = 10 but a unit costs 0.5: x = (ln 2, ln(2 / 0.5) / 0.5) from the price, 3.47 units."""
    fill = water_fill(np.array([1.0, 4.0]), np.array([1.0, 0.5]), 10.0, 1.0, price=0.5)
    np.testing.assert_allclose(fill.effort, [math.log(2.0), 2.0 * math.log(4.0)], rtol=1e-12)
    assert fill.lam == 0.5
    # A price above every first unit's gain (2) spends nothing.
    assert water_fill(np.array([1.0, 4.0]), np.array([1.0, 0.5]), 10.0, 1.0, 2.5).effort.sum() == 0


def test_nothing_to_find_spends_nothing() -> None:
    assert water_fill(np.zeros(3), np.ones(3), 5.0, 15.0).effort.tolist() == [0.0, 0.0, 0.0]
    assert water_fill(np.ones(3), np.zeros(3), 5.0, 15.0).effort.tolist() == [0.0, 0.0, 0.0]


problems = st.tuples(
    st.lists(st.floats(1e-3, 1e4), min_size=1, max_size=60),
    st.floats(0.01, 1.0),
    st.floats(0.01, 300.0),
    st.integers(0, 2**31),
)


@settings(max_examples=60, deadline=None)
@given(problem=problems)
def test_water_fill_spends_the_budget_and_meets_kkt(
    problem: tuple[list[float], float, float, int],
) -> None:
    weights_list, scale, budget, seed = problem
    weights = np.array(weights_list)
    rates = np.random.default_rng(seed).uniform(0.01, 1.0, len(weights)) * scale
    dt = 15.0
    fill = water_fill(weights, rates, budget, dt)
    assert (fill.effort >= 0.0).all()
    assert abs(fill.effort.sum() - budget) <= 1e-9 * max(budget, 1.0)
    marginal = weights * rates * dt * np.exp(-rates * fill.effort * dt)
    active = fill.effort > 0.0
    np.testing.assert_allclose(marginal[active], fill.lam, rtol=1e-8)
    assert (marginal[~active] <= fill.lam * (1.0 + 1e-9)).all()
    # No feasible allocation does better: a few random ones on the same budget.
    best = search_value(weights, rates, dt, fill.effort)
    for trial in np.random.default_rng(seed + 1).dirichlet(np.ones(len(weights)), size=8):
        assert search_value(weights, rates, dt, trial * budget) <= best * (1.0 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(problem=problems, extra=st.floats(0.0, 100.0))
def test_more_budget_never_finds_less(
    problem: tuple[list[float], float, float, int], extra: float
) -> None:
    weights_list, scale, budget, seed = problem
    weights = np.array(weights_list)
    rates = np.random.default_rng(seed).uniform(0.01, 1.0, len(weights)) * scale
    less = search_value(weights, rates, 15.0, water_fill(weights, rates, budget, 15.0).effort)
    more = water_fill(weights, rates, budget + extra, 15.0)
    assert search_value(weights, rates, 15.0, more.effort) >= less * (1.0 - 1e-12)
    assert abs(more.effort.sum() - (budget + extra)) <= 1e-9 * max(budget + extra, 1.0)


def test_effort_at_a_price_is_the_closed_form() -> None:
    np.testing.assert_allclose(
        effort_at(np.array([1.0, 4.0, 0.0]), np.array([1.0, 0.5, 1.0]), 1.0, 0.5),
        [math.log(2.0), math.log(4.0) / 0.5, 0.0],
        rtol=1e-15,
    )


# -- Whittle index -----------------------------------------------------------------------


def test_whittle_index_of_a_known_belief_by_hand() -> None:
    """Defaults, all sensors up: a = 0.2, k0 = 0.004 + 0.005 + 1/85 (closing at the mean
    of 45, 120 and 90 minutes); 30 unwatched minutes, 1,000 of value at stake:
    W = 0.2 x 0.0207647 x 30 x 1000 = 124.588."""
    k0 = 0.004 + 0.005 + 1.0 / 85.0
    index = whittle_index(np.array([1000.0]), np.array([0.2]), np.array([k0]), np.array([30.0]))
    assert index[0] == pytest.approx(0.2 * k0 * 30.0 * 1000.0, rel=1e-15)
    assert index[0] == pytest.approx(124.588, abs=1e-3)


def test_the_index_is_the_subsidy_that_makes_its_threshold_best() -> None:
    """At subsidy W(u) for resting, the threshold rule's long-run reward
    ``v r (1 - k0 theta) - W (1/theta - k0) / a`` peaks at ``theta = u``: the Whittle index."""
    a, k0, value_each, rate, u = 0.2, 0.02, 1500.0, 0.01, 12.0
    index = whittle_index(
        np.array([value_each * rate * u]), np.array([a]), np.array([k0]), np.array([u])
    )[0]
    theta = np.linspace(1.0 / (k0 + a), 1.0 / k0, 200_001)
    reward = value_each * rate * (1.0 - k0 * theta) - index * (1.0 / theta - k0) / a
    assert theta[np.argmax(reward)] == pytest.approx(u, rel=1e-3)
    # Indexable: the index rises with the belief.
    beliefs = np.linspace(1.0, 40.0, 50)
    assert (np.diff(whittle_index(rate * value_each * beliefs, a, k0, beliefs)) > 0).all()


def test_fill_by_index_rounds_and_floor() -> None:
    index = np.array([3.0, 1.0, 2.0, 0.5])
    assert fill_by_index(index, 2.5, 1.0).tolist() == [1.0, 0.5, 1.0, 0.0]
    assert fill_by_index(index, 5.0, 1.0).tolist() == [2.0, 1.0, 1.0, 1.0]
    # Nodes at or below the floor (what a unit costs) get nothing; above it, rounds go on.
    assert fill_by_index(index, 4.0, 1.0, floor=1.0).tolist() == [2.0, 0.0, 2.0, 0.0]
    assert fill_by_index(index, 4.0, 1.0, floor=3.0).tolist() == [0.0, 0.0, 0.0, 0.0]


@settings(max_examples=40, deadline=None)
@given(
    index=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=50),
    budget=st.floats(0.0, 100.0),
    cap=st.floats(0.1, 5.0),
)
def test_fill_by_index_spends_the_budget_in_index_order(
    index: list[float], budget: float, cap: float
) -> None:
    values = np.array(index)
    units = fill_by_index(values, budget, cap)
    if (values > 0).any():
        assert units.sum() == pytest.approx(budget, rel=1e-9, abs=1e-9)
    # A higher index never gets fewer units.
    order = np.argsort(-values, kind="stable")
    assert (np.diff(units[order]) <= 1e-12).all()


# -- the policies in the env -------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["tiny", "downtown"])
@pytest.mark.parametrize("name", ["search", "whittle"])
def test_a_day_in_the_env(scenario: str, name: str) -> None:
    env = CityEnv(scenario)
    policy = make_baseline(name, env)
    episode = run_episode(env, policy, seed=3)
    assert len(episode.infos) == env.scenario.time.num_steps
    assert math.isfinite(episode.summary["money"])
    used = np.array([info["units_used"] for info in episode.infos])
    assert (used <= env.budget_units * (1.0 + 1e-12)).all()
    if scenario == "downtown":  # a unit costs cents against thousands at stake
        np.testing.assert_allclose(used, env.budget_units, rtol=1e-9)


def test_search_follows_the_belief_and_holds_back_when_units_cost_too_much() -> None:
    env = CityEnv("tiny")
    policy = make_baseline("search", env)
    obs, _ = env.reset(seed=0)
    policy.reset(0)
    for _ in range(4):
        obs, *_ = env.step(policy.act(obs))
    nodes = obs["nodes"].copy()
    nodes[5, NODE_FEATURES.index("anomaly")] = 2.0  # evidence e^5 at node 5
    action = policy.act({"nodes": nodes, "globals": obs["globals"]})
    assert np.argmax(action[:-1]) == 5
    assert action.sum() == pytest.approx(env.budget_units, rel=1e-9)  # units + unused
    # A carbon price of $1e9/kg makes every unit cost more than it could find.
    dear = obs["globals"].copy()
    dear[GLOBAL_FEATURES.index("carbon_price_per_kg")] = 1e9
    for name in ("search", "whittle"):
        held = make_baseline(name, env).act({"nodes": nodes, "globals": dear})
        assert held[:-1].sum() == 0.0 and held[-1] > 0.0


def test_whittle_water_fills_the_budget_by_index() -> None:
    """The x-th unit at node i is worth W_i dt exp(-a_i x dt): `water_fill` with weights
    k0 u w; with a cap, the budget goes in index order instead."""
    env = CityEnv("tiny")
    policy = make_baseline("whittle", env)
    assert isinstance(policy, ClassicalPolicy)
    obs, _ = env.reset(seed=4)
    policy.reset(4)
    for _ in range(6):
        obs, *_ = env.step(policy.act(obs))
    nodes = obs["nodes"].astype(np.float64)
    cfg, model = env.scenario.monitoring, policy.model
    up = nodes[
        :,
        [
            NODE_FEATURES.index(f"{k}_up")
            for k in ("traffic_counters", "air_quality", "energy_meters")
        ],
    ].mean(axis=1)
    close = 1.0 / np.mean(env.scenario.incidents.mean_duration_min)
    k0 = cfg.report_per_min + up * cfg.sensor_per_min + close
    u = nodes[:, NODE_FEATURES.index("unwatched")] / (cfg.report_per_min + close)
    w, a = model.value(nodes), cfg.unit_per_min * up
    price = model.unit_cost(obs["globals"])
    action = policy.act(obs)
    expected = water_fill(k0 * u * w, a, env.budget_units, 15.0, price).effort
    np.testing.assert_allclose(action[:-1], expected, rtol=1e-12, atol=1e-12)
    assert action.sum() == pytest.approx(env.budget_units, rel=1e-9)
    policy.whittle_cap_units = 1.0
    capped = policy.act(obs)[:-1]
    index = whittle_index(w, a, k0, u)
    np.testing.assert_allclose(capped, fill_by_index(index, env.budget_units, 1.0, price / 15.0))


def test_the_belief_is_the_posterior_shape_at_the_modelled_level() -> None:
    from agents.policies.baselines import SEARCH_GAIN, posterior_weights

    env = CityEnv("tiny")
    policy = make_baseline("search", env)
    assert isinstance(policy, ClassicalPolicy)
    model = policy.model
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        obs, *_ = env.step(np.ones(env.city.num_nodes + 1))
    nodes = obs["nodes"].astype(np.float64)
    value = model.value(nodes)
    shape = posterior_weights(nodes, SEARCH_GAIN, incidents=env.scenario.incidents)
    np.testing.assert_allclose(value / value.sum(), shape / shape.sum(), rtol=1e-12)
    assert value.sum() == pytest.approx(model.total_value(nodes), rel=1e-12)


def test_a_compute_budget_paces_the_units() -> None:
    env = CityEnv("downtown_capped")
    episode = run_episode(env, make_baseline("search", env), seed=2)
    used = np.array([info["units_used"] for info in episode.infos])
    assert used[0] == pytest.approx(env.budget_units) and used.min() < env.budget_units
    assert episode.summary["compute_kgco2"] <= 2.59 * (1.0 + 1e-6)


@pytest.mark.parametrize("name", ["search", "whittle"])
def test_the_cli_runs_them(name: str) -> None:
    from typer.testing import CliRunner

    from agents.cli.main import app

    result = CliRunner().invoke(app, ["run", "tiny", "--policy", name, "--quiet"])
    assert result.exit_code == 0, result.output
    assert name in result.output
