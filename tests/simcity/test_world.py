"""The world on SimPy: a day of traffic, load and carbon; reproducible; reacts to cuts."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from simcity.city.build import build_city
from simcity.compute.bill import PolicyCompute
from simcity.config.scenario import load_scenario
from simcity.monitoring.incidents import Incidents
from simcity.monitoring.monitor import MonitoringInputs, MonitoringStreams, step_monitoring
from simcity.traffic.assignment import assign
from simcity.traffic.day import TrafficInputs, step_traffic, traffic_day
from simcity.world import World, WorldView

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


def _arrays(view: WorldView) -> dict[str, np.ndarray]:
    """Every array a `WorldView` shows after a step, by a name for the failure message."""
    traffic, mon = view.traffic, view.monitoring
    assert traffic.snapshot is not None and view.truth is not None and view.outcome is not None
    shown = {
        "allocation": view.allocation,
        "capacity_factor": view.capacity_factor,
        "feeder_kw": view.feeder_kw,
        "carbon": view.carbon_g_per_kwh,
        "flows": traffic.flows_veh_h,
        "times": traffic.times_min,
        "od": traffic.snapshot.od_veh_h,
        "capacity": traffic.snapshot.capacity_veh_h,
        "node_load": view.energy.node_load_kw,
        "ev_charging": view.energy.ev_charging_veh,
        "up": mon.up,
        "up_share": mon.sensors_up_share,
        "installed": mon.installed,
        "hotspot": mon.hotspot,
        "anomaly": mon.anomaly,
        "unwatched": mon.unwatched,
        "cut_factor": mon.cut_factor,
        "recent": mon.recent_detections,
        "open_node": mon.open.node,
        "open_detected_min": mon.open.detected_min,
        "quantities": view.truth.quantities,
        "accident_rate": view.truth.accident_rate_per_h,
        "error_by_node": view.outcome.error_by_node,
    }
    assert mon.estimates is not None
    return shown | {"estimates": mon.estimates}


def test_the_view_is_read_only_and_stays_as_it_was() -> None:
    world = World(load_scenario("downtown"), rng=np.random.default_rng(2))
    for _ in range(36):
        world.advance(np.full(world.city.num_nodes, 0.1))
    view = world.view
    assert world.view is view  # the same object until the world changes
    for name, array in _arrays(view).items():
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0.0
        assert not array.flags.writeable, name
    kept = {name: array.copy() for name, array in _arrays(view).items()}
    world.advance()
    assert world.view is not view and world.view.step_index == view.step_index + 1
    for name, array in _arrays(view).items():
        np.testing.assert_array_equal(array, kept[name], err_msg=name)
    assert len(view.records) == 36 and len(world.view.records) == 37


def test_intervene_replaces_values_and_never_writes_into_shown_arrays() -> None:
    world = World(load_scenario("tiny"), rng=np.random.default_rng(0))
    world.advance()
    held = world.view
    anomaly = np.full(held.monitoring.anomaly.shape, 3.0)
    injected = Incidents.concat(held.monitoring.open, _overload_at(5, world.env.now))
    world.intervene(anomaly=anomaly, open_incidents=injected)
    anomaly[...] = 7.0  # the world took a copy
    assert (world.view.monitoring.anomaly == 3.0).all() and not held.monitoring.anomaly.all()
    assert world.monitoring.open.num == held.monitoring.open.num + 1
    with pytest.raises(ValueError, match="capacity_factor"):
        world.intervene(capacity_factor=np.ones(3))
    world.advance()  # the injected overload is detected or stays open; the world goes on
    assert world.records[-1].incidents_open + world.records[-1].incidents_missed >= 1


def _overload_at(node: int, now: float) -> Incidents:
    one, nan = np.ones(1), np.full(1, np.nan)
    i64 = np.array([node], dtype=np.int64)
    return Incidents(
        kind=np.array([2], dtype=np.int64),
        node=i64,
        link=np.array([-1], dtype=np.int64),
        severity=one,
        start_min=np.full(1, now),
        end_min=np.full(1, now + 600.0),
        damage_per_min=one,
        detected_min=nan,
        damage=np.zeros(1),
        clock=np.full(1, 1e9),  # never detected
    )


def test_subsystem_steps_are_pure_functions_of_state_inputs_and_streams() -> None:
    scenario = load_scenario("downtown")
    world = World(scenario, rng=np.random.default_rng(9))
    for _ in range(40):
        world.advance()
    view = world.view
    state, truth = view.monitoring, view.truth
    assert truth is not None
    kept = {k: v.copy() for k, v in vars(state).items() if isinstance(v, np.ndarray)}
    t0 = view.now_min
    inputs = MonitoringInputs(
        truth, np.full(world.city.num_nodes, 0.2), t0, t0 + 15, (), PolicyCompute(), 300.0
    )
    (a, out_a), (b, out_b) = (
        step_monitoring(state, inputs, MonitoringStreams.from_rng(np.random.default_rng(1)))
        for _ in range(2)
    )
    assert (out_a.damage, out_a.num_new, out_a.num_detected, out_a.estimation_error) == (
        out_b.damage,
        out_b.num_new,
        out_b.num_detected,
        out_b.estimation_error,
    )
    np.testing.assert_array_equal(out_a.error_by_node, out_b.error_by_node)
    np.testing.assert_array_equal(a.anomaly, b.anomaly)
    np.testing.assert_array_equal(a.open.detected_min, b.open.detected_min)
    for name, before in kept.items():
        np.testing.assert_array_equal(getattr(state, name), before, err_msg=name)
    # Traffic: the same state and inputs, the same equilibrium, the state left alone.
    day = traffic_day(world.city, scenario, list)  # the city's day, already known
    cuts = TrafficInputs(view.step_index, view.capacity_factor, a.cut_factor, a.known_cut_factor)
    first, second = (step_traffic(view.traffic, cuts, day) for _ in range(2))
    np.testing.assert_array_equal(first.flows_veh_h, second.flows_veh_h)
    np.testing.assert_array_equal(first.times_min, second.times_min)
    assert view.traffic is world.view.traffic
