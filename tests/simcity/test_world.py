"""The world on SimPy: a day of traffic, load and carbon; reproducible; reacts to cuts."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from simcity.city.build import build_city
from simcity.config.scenario import load_scenario
from simcity.traffic.assignment import assign
from simcity.world import World

CARBON = Path(__file__).resolve().parents[3] / "shared" / "data" / "carbon"


@pytest.fixture(scope="module")
def tiny_day() -> World:
    world = World(load_scenario("tiny"))
    world.run()
    return world


def test_a_day_has_every_step_and_sane_numbers(tiny_day: World) -> None:
    records = tiny_day.records
    assert [r.step for r in records] == list(range(96))
    assert [r.time_min for r in records] == [15.0 * k for k in range(96)]
    for r in records:
        values = np.array(list(r.as_dict().values()), dtype=float)
        assert np.isfinite(values).all() and (values[values != r.temperature_c] >= 0).all()
        assert r.carbon_g_per_kwh == 350.0
        assert r.assignment_rel_gap <= 1e-3 or r.demand_veh_h == 0
        assert r.emissions_kg == pytest.approx(r.energy_kwh * 0.350)
    demand = np.array([r.demand_veh_h for r in records])
    assert demand[32] > 5 * demand[12]  # 08:00 rush versus 03:00


def test_same_scenario_same_trajectory_bit_for_bit(tiny_day: World) -> None:
    again = World(load_scenario("tiny"))
    again.run()
    assert [r.as_dict() for r in again.records] == [r.as_dict() for r in tiny_day.records]
    np.testing.assert_array_equal(again.flows_veh_h, tiny_day.flows_veh_h)


def test_advance_stops_at_the_end(tiny_day: World) -> None:
    with pytest.raises(RuntimeError):
        tiny_day.advance()


def _ciso_at(utc: dt.datetime) -> float:
    """CAISO intensity at a UTC instant, interpolated by hand from the raw CSV."""
    rows = {}
    with (CARBON / "CISO_2022_hourly.csv").open() as f:
        for row in csv.DictReader(f):
            rows[row["timestamp"]] = row["avg_CI"]
    hour = utc.replace(minute=0, second=0)
    key = f"{hour:%Y-%m-%d %H}:00:00+00:00"
    key2 = f"{hour + dt.timedelta(hours=1):%Y-%m-%d %H}:00:00+00:00"
    a, b = float(rows[key]), float(rows[key2])
    frac = (utc - hour).total_seconds() / 3600
    return a + (b - a) * frac


@pytest.mark.skipif(not CARBON.is_dir(), reason="shared/data/carbon not found")
def test_downtown_carbon_follows_the_real_trace_in_local_time() -> None:
    scenario = load_scenario("downtown")
    world = World(scenario)
    # Step 52 is 13:00-13:15 PDT on 2022-07-12; midpoint 13:07:30 PDT = 20:07:30 UTC.
    expected = _ciso_at(dt.datetime(2022, 7, 12, 20, 7, 30))
    assert world.carbon_g_per_kwh[52] == pytest.approx(expected, rel=1e-9)
    # Solar: the midday grid is cleaner than the evening grid.
    assert world.carbon_g_per_kwh[48:56].mean() < world.carbon_g_per_kwh[80:88].mean()


def test_capacity_cut_moves_traffic_off_the_link() -> None:
    scenario = load_scenario("tiny")
    world = World(scenario)
    for _ in range(33):
        world.advance()
    busiest = int(np.argmax(world.flows_veh_h))
    before = world.flows_veh_h[busiest]
    cut = World(scenario, world.city)
    for _ in range(32):
        cut.advance()
    cut.intervene(capacity_factor=np.where(np.arange(cut.city.num_links) == busiest, 0.02, 1.0))
    cut.advance()
    assert cut.flows_veh_h[busiest] < 0.5 * before
    assert cut.records[-1].demand_veh_h == pytest.approx(world.records[-1].demand_veh_h)


def test_variants_change_the_day() -> None:
    base = World(load_scenario("downtown"))
    city = base.city
    stadium = World(load_scenario("downtown_stadium"), city)
    heat = World(load_scenario("downtown_heatwave"), city)
    hour_18 = 18.25
    assert stadium.od_now(hour_18).sum() > base.od_now(hour_18).sum() + 3000
    base_steps = [base.advance() for _ in range(64)]  # to 16:00
    heat_steps = [heat.advance() for _ in range(64)]
    assert max(r.load_kw for r in heat_steps) > 1.1 * max(r.load_kw for r in base_steps)


def test_warm_start_saves_iterations() -> None:
    scenario = load_scenario("downtown")
    world = World(scenario, build_city(scenario))
    records = [world.advance() for _ in range(40)]
    warm = np.mean([r.assignment_iterations for r in records[30:40]])
    # The same demands solved from scratch take more iterations.
    cold = [
        assign(world.city.network, world.od_now(r.hour_local), rel_gap=scenario.traffic.rel_gap)
        for r in records[30:40]
    ]
    assert warm < np.mean([c.num_iterations for c in cold])


def test_event_load_does_not_blow_up_incident_rates() -> None:
    world = World(load_scenario("downtown_stadium"), rng=np.random.default_rng(0))
    records = world.run()
    during = [r for r in records if 19.0 <= r.hour_local < 22.0]
    assert sum(r.incidents_new for r in records) < 1000
    assert all(np.isfinite(r.damage) for r in records) and during
