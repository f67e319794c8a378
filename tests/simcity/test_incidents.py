"""Incidents and sensors: arrivals, detection, response, damage; failures and repairs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from simcity.config.monitoring import ScheduledIncident
from simcity.config.scenario import load_scenario
from simcity.monitoring import incidents as inc
from simcity.monitoring import sensors
from simcity.world import World


def one_incident(
    start: float, end: float, rate: float, detected: float = np.nan, clock: float = 1.0
) -> inc.Incidents:
    return inc.Incidents(
        kind=np.array([inc.ACCIDENT]),
        node=np.array([0]),
        link=np.array([-1]),
        severity=np.array([1.0]),
        start_min=np.array([start]),
        end_min=np.array([end]),
        damage_per_min=np.array([rate]),
        detected_min=np.array([detected]),
        damage=np.array([0.0]),
        clock=np.array([clock]),
    )


def advance(
    incidents: inc.Incidents,
    hazard_per_min: float,
    t0: float,
    t1: float,
    damage_factor: float = 0.3,
    duration_factor: float = 0.5,
) -> inc.StepOutcome:
    """`advance_incidents` at one hazard for every incident."""
    return inc.advance_incidents(
        incidents,
        np.full(incidents.num, hazard_per_min),
        t0,
        t1,
        response_damage_factor=damage_factor,
        response_duration_factor=duration_factor,
    )


def test_undetected_incident_accrues_full_damage_and_closes() -> None:
    out = advance(one_incident(5.0, 12.0, 10.0), 0.0, 0.0, 15.0)
    assert out.damage == pytest.approx(70.0)  # 7 min x 10 $/min
    assert out.closed.tolist() == [True] and not out.incidents.detected.any()


def test_detected_incident_is_cut_short_and_cheaper() -> None:
    # Detected at minute 2 of an incident open [0, 42) in an earlier interval: from
    # t0 = 2 only the reduced rate applies, over its 40 remaining minutes.
    out = advance(one_incident(0.0, 42.0, 10.0, detected=2.0), 0.0, 2.0, 60.0)
    assert out.damage == pytest.approx(40.0 * 10.0 * 0.3)
    fresh = advance(one_incident(0.0, 42.0, 10.0), 1e9, 0.0, 60.0)
    # Detected at once (huge hazard): 42 min remain, become 21 at 0.3 of the rate.
    assert fresh.damage == pytest.approx(21.0 * 10.0 * 0.3, rel=1e-6)
    assert fresh.newly_detected.tolist() == [True]
    assert fresh.incidents.end_min[0] == pytest.approx(21.0, rel=1e-6)


def test_detection_frequency_matches_the_probability() -> None:
    # 20,000 incidents open for a whole 15-minute step at hazard 0.1/min: P = 0.7769.
    n = 20_000
    table = inc.Incidents(
        kind=np.zeros(n, dtype=np.int64),
        node=np.zeros(n, dtype=np.int64),
        link=np.full(n, -1),
        severity=np.ones(n),
        start_min=np.zeros(n),
        end_min=np.full(n, 1e6),
        damage_per_min=np.ones(n),
        detected_min=np.full(n, np.nan),
        damage=np.zeros(n),
        clock=np.random.default_rng(1).exponential(1.0, size=n),
    )
    out = advance(table, 0.1, 0.0, 15.0, 1.0, 1.0)
    expected = float(inc.detection_probability(np.array([0.1]), 15.0)[0])
    assert expected == pytest.approx(1 - np.exp(-1.5))
    assert out.newly_detected.mean() == pytest.approx(expected, abs=0.01)


def test_arrivals_are_poisson_with_the_given_rates() -> None:
    # 3 x 4000 sites at 0.4, 0 and 6 arrivals per hour over 30 minutes.
    rates = np.repeat([0.4, 0.0, 6.0], 4000)
    words = np.random.default_rng(2).integers(0, 2**64, size=len(rates), dtype=np.uint64)
    site, times, draws = inc.sample_arrivals(rates, 60.0, 90.0, words)
    counts = np.bincount(site, minlength=len(rates)).reshape(3, -1)
    assert (counts[1] == 0).all()
    for mean, count in [(0.2, counts[0]), (3.0, counts[2])]:  # Poisson: variance = mean
        assert count.mean() == pytest.approx(mean, rel=0.05)
        assert count.var() == pytest.approx(mean, rel=0.1)
    assert ((times >= 60) & (times < 90)).all() and np.diff(site).min() >= 0
    # Times uniform over the interval, and the arrivals' other numbers uniform too.
    assert stats.kstest((times - 60) / 30, "uniform").pvalue > 1e-3
    for column in draws.T:
        assert stats.kstest(column, "uniform").pvalue > 1e-3


@settings(max_examples=50, deadline=None)
@given(
    st.floats(0.1, 1e4),
    st.floats(0.1, 1e4),
    st.floats(0.0, 1440.0),
)
def test_sensor_chain_probabilities_are_valid(mtbf_h: float, mttr_h: float, dt_min: float) -> None:
    p_fail, p_repair = sensors.transition_probabilities(dt_min, mtbf_h, mttr_h)
    assert 0.0 <= p_fail <= 1.0 and 0.0 <= p_repair <= 1.0
    # Over a long time the chain forgets: P(up) tends to MTBF / (MTBF + MTTR).
    p_fail_inf, p_repair_inf = sensors.transition_probabilities(1e12, mtbf_h, mttr_h)
    assert p_repair_inf == pytest.approx(mtbf_h / (mtbf_h + mttr_h))
    assert p_fail_inf == pytest.approx(mttr_h / (mtbf_h + mttr_h))


@pytest.mark.parametrize("per_node", [1, 3])
def test_sensor_fleet_settles_at_its_availability(per_node: int) -> None:
    rng = np.random.default_rng(3)
    installed = np.full((20_000, 1), per_node)
    up = installed.copy()
    for _ in range(200):
        uniforms = (rng.random(up.shape), rng.random(up.shape))
        up = sensors.step_sensors(installed, up, 60.0, uniforms, mtbf_h=30.0, mttr_h=10.0)
    assert ((up >= 0) & (up <= installed)).all()
    assert up.mean() / per_node == pytest.approx(0.75, abs=0.02)


def test_scheduled_incident_happens_where_and_when_planned() -> None:
    base = load_scenario("tiny")
    planned = {
        "name": "drill",
        "kind": "scheduled",
        "lon": -97.7431,
        "lat": 30.2672,
        "at": "10:20",
        "duration_min": 30.0,
        "severity": 2.0,
        "damage_per_min": 5.0,
    }
    incidents = base.incidents.model_copy(update={"scheduled": (ScheduledIncident(**planned),)})
    scenario = base.model_validate({**base.model_dump(), "incidents": incidents.model_dump()})
    world = World(scenario, rng=np.random.default_rng(0))
    for _ in range(42):
        world.advance()
    table = world.monitoring.all_incidents()
    drill = table.kind == inc.SCHEDULED
    assert drill.sum() == 1
    assert table.start_min[drill][0] == pytest.approx(10 * 60 + 20)
    assert table.damage_per_min[drill][0] == pytest.approx(10.0)


def test_open_accidents_cut_their_link_capacity() -> None:
    world = World(load_scenario("downtown"), rng=np.random.default_rng(4))
    for _ in range(40):
        world.advance()
        accidents = world.monitoring.open.link[world.monitoring.open.link >= 0]
        if len(accidents):
            break
    assert len(accidents), "an accident should occur by 10:00 downtown"
    assert (world.monitoring.cut_factor[accidents] <= 0.5).all()
    world.advance()
    cut = world.traffic
    assert cut is not None and cut.capacity_veh_h.min() < world.city.capacity_veh_h.max()


def test_detection_clock_carries_over_intervals() -> None:
    # Clock 2.0 at hazard 0.1/min: 1.5 spent over [0, 15), the rest by minute 20.
    first = advance(one_incident(0.0, 100.0, 10.0, clock=2.0), 0.1, 0.0, 15.0, 1.0, 1.0)
    assert not first.newly_detected.any()
    assert first.incidents.clock[0] == pytest.approx(0.5)
    second = advance(first.incidents, 0.1, 15.0, 30.0, 1.0, 1.0)
    assert second.newly_detected.tolist() == [True]
    assert second.incidents.detected_min[0] == pytest.approx(20.0)


def test_poisson_by_inversion_has_poisson_moments_and_moves_little_with_its_mean() -> None:
    uniform = np.random.default_rng(5).random(200_000)
    for mean in (0.05, 2.0, 50.0):
        counts = inc.poisson_by_inversion(np.full(len(uniform), mean), uniform)
        assert counts.mean() == pytest.approx(mean, rel=0.02)
        assert counts.var() == pytest.approx(mean, rel=0.05)
    # Common random numbers: 2% more rate changes only the counts the extra mass reaches.
    low = inc.poisson_by_inversion(np.full(len(uniform), 0.2), uniform)
    high = inc.poisson_by_inversion(np.full(len(uniform), 0.204), uniform)
    assert (high >= low).all() and (high != low).mean() < 0.01


def test_worlds_from_one_seed_meet_the_same_incidents_under_different_allocations() -> None:
    scenario = load_scenario("downtown")
    worlds = [World(scenario, rng=np.random.default_rng(11)) for _ in range(2)]
    n = worlds[0].city.num_nodes
    watched = np.zeros(n)
    watched[: n // 2] = 40.0 / (n // 2)
    for _ in range(48):
        worlds[0].advance(np.full(n, 20.0 / n))
        worlds[1].advance(watched)
    a, b = (w.monitoring.all_incidents() for w in worlds)
    assert a.num > 20
    key_a = {(k, node, round(s, 6)) for k, node, s in zip(a.kind, a.node, a.start_min, strict=True)}
    key_b = {(k, node, round(s, 6)) for k, node, s in zip(b.kind, b.node, b.start_min, strict=True)}
    assert len(key_a & key_b) >= 0.9 * max(len(key_a), len(key_b))
    # ...and their detections differ: the allocations did something.
    assert not np.array_equal(np.isnan(a.detected_min), np.isnan(b.detected_min))


def test_undetected_incidents_raise_anomaly_evidence_where_sensors_see() -> None:
    scenario = load_scenario("downtown")
    quiet = scenario.model_copy(
        update={"monitoring": scenario.monitoring.model_copy(update={"alarm_snr": 0.0})}
    )
    world = World(scenario, rng=np.random.default_rng(3))
    silent = World(quiet, rng=np.random.default_rng(3))
    hit, miss = [], []
    for _ in range(60):
        world.advance()
        silent.advance()
        mon = world.monitoring
        evidence = mon.anomaly.max(axis=1)
        hidden = np.zeros(world.city.num_nodes, dtype=bool)
        hidden[mon.open.node[~mon.open.detected]] = True
        hit.extend(evidence[hidden])
        miss.extend(evidence[~hidden])
        assert not silent.monitoring.anomaly.any()
    assert len(hit) > 30
    assert np.mean(hit) > 1.5 * np.mean(miss)  # about 1.9 vs 1.0 (max of three null CUSUMs)
