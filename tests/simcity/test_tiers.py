"""Analytics tiers: the action's shape, capacity per tier, the bill and detection by hand.

A tier of cost 4 (4.6e15 FLOP per unit-minute against the detector's 1.15e15) takes four
units of capacity per unit; its gains multiply what a unit does to detection and noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from simcity.config.monitoring import AnalyticsTier
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.monitoring.monitor import effective_units

DETECTOR = AnalyticsTier(name="detector", flop_per_unit_min=1.15e15)
HEAVY = AnalyticsTier(name="heavy", flop_per_unit_min=4.6e15, hazard_gain=3.0, noise_gain=2.0)


def with_tiers(*tiers: AnalyticsTier, name: str = "tiny") -> Scenario:
    scenario = load_scenario(name)
    compute = scenario.compute.model_copy(update={"tiers": tiers})
    return scenario.model_copy(update={"compute": compute})


def test_action_has_a_weight_per_node_and_tier() -> None:
    env = CityEnv(with_tiers(DETECTOR, HEAVY))
    assert env.action_space.shape == (16 * 2 + 1,)
    assert env.scenario.compute.tier_cost == (1.0, 4.0)
    assert CityEnv("tiny").action_space.shape == (17,)


def test_a_heavy_unit_takes_its_share_of_the_capacity() -> None:
    env = CityEnv(with_tiers(DETECTOR, HEAVY))
    env.reset(seed=0)
    action = np.zeros(33)
    action[3 * 2 + 0] = 1.0  # node 3, detector
    action[5 * 2 + 1] = 1.0  # node 5, heavy: the same capacity, a quarter of the units
    units = env.allocation(action)
    assert units.shape == (16, 2)
    expected = np.zeros((16, 2))
    expected[3, 0], expected[5, 1] = 10.0, 2.5
    np.testing.assert_allclose(units, expected, rtol=1e-15)
    _, _, _, _, info = env.step(action)
    assert env.world is not None and env.world.outcome is not None
    assert info["units_used"] == pytest.approx(20.0)
    assert env.world.allocation[3] == pytest.approx(10.0)
    assert env.world.allocation[5] == pytest.approx(10.0)
    # FLOPs billed by hand: 10 detector units and 2.5 heavy ones for 15 minutes.
    flop = (10.0 * 1.15e15 + 2.5 * 4.6e15) * 15.0
    assert env.world.outcome.bill.flop == pytest.approx(flop, rel=1e-12)


def test_detection_hazard_by_hand_with_two_tiers() -> None:
    """The search belief at node 3 sees 3 x 5 heavy units: k = report + up (sensor + unit a)."""
    env = CityEnv(with_tiers(DETECTOR, HEAVY))
    env.reset(seed=0)
    assert env.world is not None
    cfg = env.scenario.monitoring
    before = env.world.monitoring.unwatched.copy()
    action = np.zeros(33)
    action[3 * 2 + 1] = 1.0  # the whole capacity on node 3's heavy tier: 5 units
    env.step(action)
    mon = env.world.monitoring
    air = mon.installed[3, 1] > 0
    up = (1.0 + float(air) + 1.0) / 3.0
    k = cfg.report_per_min + up * (cfg.sensor_per_min + cfg.unit_per_min * 15.0) + 1.0 / 85.0
    expected = before[3] * np.exp(-15 * k) + (1 - np.exp(-15 * k)) / k
    assert mon.unwatched[3] == pytest.approx(expected, rel=1e-9)


def test_effective_units_weigh_each_tier_by_its_gain() -> None:
    units = np.array([[2.0, 1.0], [0.0, 0.5]])
    assert effective_units(np.zeros(2), units, (1.0, 3.0)).tolist() == [5.0, 1.5]
    plain = np.array([1.0, 2.0])
    assert effective_units(plain, None, ()) is plain


def test_one_default_tier_is_the_plain_env_bit_for_bit() -> None:
    plain = CityEnv("tiny")
    tiered = CityEnv(with_tiers(AnalyticsTier(name="detector", flop_per_unit_min=1.15e15)))
    assert tiered.action_space.shape == plain.action_space.shape
    actions = np.random.default_rng(0).dirichlet(np.ones(17), size=4)
    for env in (plain, tiered):
        env.reset(seed=3)
    for action in actions:
        a, b = plain.step(action), tiered.step(action)
        for key in a[0]:
            assert a[0][key].tobytes() == b[0][key].tobytes()
        info_a, info_b = dict(a[-1]), dict(b[-1])
        assert info_a.pop("node_cost").tobytes() == info_b.pop("node_cost").tobytes()
        assert (*a[1:-1], info_a) == (*b[1:-1], info_b)


def test_a_compute_budget_scales_every_tier_alike() -> None:
    scenario = with_tiers(DETECTOR, HEAVY)
    compute = scenario.compute.model_copy(update={"carbon_budget_kg_per_day": 0.05})
    env = CityEnv(scenario.model_copy(update={"compute": compute}))
    env.reset(seed=0)
    action = np.zeros(33)
    action[3 * 2 + 0] = action[5 * 2 + 1] = 1.0
    for _ in range(3):
        _, _, _, _, info = env.step(action)
    assert env.world is not None
    units = env.world.allocation
    assert info["units_refused"] > 0.0
    assert units[3] == pytest.approx(units[5], rel=1e-12)  # one share for both tiers
    assert info["units_used"] == pytest.approx(units.sum(), rel=1e-12)


def test_downtown_vlm_prices_the_vlm_by_its_flops() -> None:
    env = CityEnv("downtown_vlm")
    compute = env.scenario.compute
    assert [t.name for t in compute.tiers] == ["detector", "vlm"]
    assert compute.tier_cost[1] == pytest.approx(1.44e16 / 1.15e15)
    assert env.action_space.shape == (env.city.num_nodes * 2 + 1,)
