"""The day's compute budget: never exceeded, policy decisions reserved, refused when too small."""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.compute.bill import PolicyCompute
from simcity.config.overrides import override_scenario
from simcity.config.scenario import Scenario, load_scenario
from simcity.errors import SimcityError
from simcity.world import World

STEPS = 12


@cache
def _tiny() -> tuple[Scenario, City]:
    scenario = override_scenario(load_scenario("tiny"), [("time.num_steps", STEPS)])
    return scenario, build_city(scenario)


def _world(changes: list[tuple[str, Any]], policy_flop: float = 0.0) -> World:
    scenario, city = _tiny()
    return World(
        override_scenario(scenario, changes),
        city,
        rng=np.random.default_rng(3),
        policy=PolicyCompute(policy_flop),
    )


@settings(max_examples=25, deadline=None)
@given(
    carbon_kg=st.one_of(st.none(), st.floats(0.0, 40.0)),
    energy_kwh=st.one_of(st.none(), st.floats(0.0, 120.0)),
    min_gpus=st.integers(0, 2),
    intensity=st.floats(20.0, 800.0),
    amplitude=st.floats(0.0, 1.0),
    policy_flop=st.sampled_from([0.0, 1e9, 1e13]),
    seed=st.integers(0, 2**16),
)
def test_day_compute_never_exceeds_its_budget(
    carbon_kg: float | None,
    energy_kwh: float | None,
    min_gpus: int,
    intensity: float,
    amplitude: float,
    policy_flop: float,
    seed: int,
) -> None:
    carbon = {"source": "daily", "mean_g_per_kwh": intensity}
    carbon["amplitude_g_per_kwh"] = amplitude * intensity
    changes: list[tuple[str, Any]] = [
        ("compute.carbon_budget_kg_per_day", carbon_kg),
        ("compute.energy_budget_kwh_per_day", energy_kwh),
        ("compute.min_gpus", min_gpus),
        ("carbon", carbon),
    ]
    try:
        world = _world(changes, policy_flop)
    except SimcityError as err:  # the policy's decisions alone do not fit
        assert err.field is not None and "budget" in err.field
        return
    rng = np.random.default_rng(seed)
    n, budget_units = world.city.num_nodes, world.scenario.monitoring.budget_units
    for _ in range(STEPS):
        weights = rng.dirichlet(np.ones(n + 1)) * rng.choice([0.0, 1.0, 1.0])
        world.advance(budget_units * weights[:n] * rng.uniform(0.0, 1.5))
    share = STEPS * world.dt_min / 1440.0  # a short episode's share of the day
    carbon_kg_spent = sum(r.compute_gco2 for r in world.records) / 1000.0
    kwh_spent = sum(r.compute_kwh for r in world.records)
    if carbon_kg is not None:
        assert carbon_kg_spent <= carbon_kg * share * (1 + 1e-9) + 1e-12
        left = world.records[-1].compute_budget_left_kg
        assert left == pytest.approx(carbon_kg * share - carbon_kg_spent, abs=1e-9)
    if energy_kwh is not None:
        assert kwh_spent <= energy_kwh * share * (1 + 1e-9) + 1e-12
    for record in world.records:
        assert record.units_refused >= -1e-9
        assert record.units_used >= 0.0


def test_without_a_budget_nothing_is_refused() -> None:
    world = _world([])
    for _ in range(3):
        record = world.advance(np.full(world.city.num_nodes, 1.0))
        assert record.units_refused == 0.0
        assert record.units_used == world.city.num_nodes
        assert record.compute_budget_left == 1.0
        assert record.compute_budget_left_kg == record.compute_budget_left_kwh == 0.0
    assert world.view.compute_budget_left == 1.0


def test_a_tight_budget_scales_the_allocation_down_then_switches_the_fleet_off() -> None:
    world = _world([("compute.carbon_budget_kg_per_day", 8.0), ("compute.min_gpus", 1)])
    units = np.full(world.city.num_nodes, 2.0)
    records = [world.advance(units) for _ in range(STEPS)]
    assert records[0].units_refused == 0.0
    assert any(0.0 < r.units_used < units.sum() for r in records)  # scaled down
    assert records[-1].gpus_on == 0 and records[-1].units_used == 0.0  # fleet off
    shares = [r.compute_budget_left_kg for r in records]
    assert all(a >= b for a, b in itertools.pairwise(shares))


def test_a_budget_the_policy_alone_exceeds_is_refused_at_reset() -> None:
    with pytest.raises(SimcityError, match="policy's decisions alone") as err:
        _world([("compute.carbon_budget_kg_per_day", 1e-6)], policy_flop=1e13)
    assert err.value.field == "compute.carbon_budget_kg_per_day"
    with pytest.raises(SimcityError) as err:
        _world([("compute.energy_budget_kwh_per_day", 1e-9)], policy_flop=1e13)
    assert err.value.field == "compute.energy_budget_kwh_per_day"


def test_a_negative_budget_is_refused_by_the_scenario() -> None:
    with pytest.raises(SimcityError, match="carbon_budget_kg_per_day"):
        _world([("compute.carbon_budget_kg_per_day", -1.0)])
