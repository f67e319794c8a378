"""Traffic that answers to incidents: re-routing around a detected cut, the delay term of
the reward, and the gravity OD kept per city (issue 20, items 4 and 5)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from toy_networks import make_network

import simcity.traffic.demand as demand
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.traffic.assignment import assign
from simcity.traffic.day import TrafficDay, TrafficInputs, initial_traffic, step_traffic
from simcity.traffic.delay import delay_shares, incident_delay_veh_h

EARLY = 20  # 5:00 in downtown: roads about 60 % loaded, a cut barely moves the overall gap


def _downtown_day() -> TrafficDay:
    env = CityEnv("downtown")
    env.reset(seed=0)
    assert env.world is not None
    return env.world._day


def _interval(day: TrafficDay, link: int, *, detected: bool) -> Any:
    """The traffic of step `EARLY` with an accident halving ``link``."""
    num_links = len(day.network.capacity_veh_h)
    cut = np.ones(num_links)
    cut[link] = 0.5
    known = cut if detected else np.ones(num_links)
    inputs = TrafficInputs(EARLY, np.ones(num_links), cut, known)
    snapshot = step_traffic(initial_traffic(day.network), inputs, day).snapshot
    assert snapshot is not None
    return snapshot


def test_a_detected_accident_on_a_loaded_link_drains_it() -> None:
    day = _downtown_day()
    net, od = day.network, day.od(EARLY)
    base = day.solve(EARLY, np.ones(len(net.capacity_veh_h)))
    link = int(np.argmax(base.flows_veh_h))
    assert base.flows_veh_h[link] > 0.5 * net.capacity_veh_h[link]  # a loaded link
    capacity = net.capacity_veh_h.copy()
    capacity[link] *= 0.5
    # The old rule, the network-wide gap alone, is met before any step: nothing moves.
    old = assign(
        net,
        od,
        capacity_veh_h=capacity,
        rel_gap=day.cfg.incident_rel_gap,
        max_iterations=day.cfg.incident_max_iterations,
        warm_start=base.flows_veh_h,
        warm_start_od_veh_h=od,
    )
    np.testing.assert_array_equal(old.flows_veh_h, base.flows_veh_h)
    # The day's re-routing watches the cut link: its flow drops.
    after = _interval(day, link, detected=True).assignment
    assert after.num_iterations > 1
    assert after.flows_veh_h[link] < 0.9 * base.flows_veh_h[link]
    assert after.times_min[link] < 16 * base.times_min[link]  # not the undrained v/c * 2


def test_watched_links_must_settle_before_the_solve_stops() -> None:
    """Two routes at equilibrium beside a long busy road of their own; halving the first
    route's capacity raises the overall gap only a little (the busy road dominates total
    travel time), but the watched link keeps moving until its change is small."""
    routes = [(0, 1, 10.0, 1000.0), (1, 3, 0.0, 1e9), (0, 2, 15.0, 20000.0), (2, 3, 0.0, 1e9)]
    net = make_network([*routes, (4, 5, 100.0, 1e9)], [0, 3, 4, 5], b=0.15, power=4.0)
    od = np.zeros((4, 4))
    od[0, 1], od[2, 3] = 1500.0, 100_000.0
    before = assign(net, od, rel_gap=1e-10)
    capacity = net.capacity_veh_h.copy()
    capacity[0] *= 0.5
    kwargs = dict(capacity_veh_h=capacity, rel_gap=0.05, max_iterations=50)
    warm = dict(warm_start=before.flows_veh_h, warm_start_od_veh_h=od)
    blind = assign(net, od, **kwargs, **warm)  # type: ignore[arg-type]
    assert blind.num_iterations == 1  # the gap was met at the start
    watched = assign(net, od, **kwargs, **warm, watch_links=np.array([0]))  # type: ignore[arg-type]
    exact = assign(net, od, capacity_veh_h=capacity, rel_gap=1e-10)
    assert watched.num_iterations > 1 and watched.converged
    moved, left = before.flows_veh_h[0] - watched.flows_veh_h[0], watched.flows_veh_h[0]
    assert moved > 0 and abs(left - exact.flows_veh_h[0]) < abs(before.flows_veh_h[0] - left)
    with pytest.raises(SimcityError, match="watch_links"):
        assign(net, od, watch_links=np.array([7]))


def test_undetected_accidents_cost_delay_and_detection_cuts_it() -> None:
    day = _downtown_day()
    base = day.solve(EARLY, np.ones(len(day.network.capacity_veh_h)))
    link = int(np.argmax(base.flows_veh_h))
    hidden = _interval(day, link, detected=False)
    found = _interval(day, link, detected=True)
    # Undetected: same flows, the cut link slower; the delay is that slowdown, by hand.
    np.testing.assert_array_equal(hidden.assignment.flows_veh_h, base.flows_veh_h)
    slower = hidden.assignment.times_min[link] - base.times_min[link]
    by_hand = base.flows_veh_h[link] * slower * 15.0 / 3600.0
    assert incident_delay_veh_h(hidden, 15.0) == pytest.approx(by_hand, rel=1e-12)
    assert incident_delay_veh_h(found, 15.0) < 0.5 * incident_delay_veh_h(hidden, 15.0)
    # No accident: no delay, and nothing to share.
    clear = _interval(day, link, detected=False)._replace(cut_links=np.zeros(0, dtype=int))
    clear = clear._replace(assignment=clear.reference)
    assert incident_delay_veh_h(clear, 15.0) == 0.0
    head = day.network.head
    shares = delay_shares(hidden, head, day.network.num_nodes)
    assert shares.sum() == pytest.approx(1.0) and shares[head[link]] == pytest.approx(1.0)


def test_the_delay_cost_enters_the_reward_and_the_node_split() -> None:
    scenario = load_scenario("downtown")
    reward_cfg = scenario.reward.model_copy(update={"delay_cost_per_veh_h": 14.1})
    env = CityEnv(scenario.model_copy(update={"reward": reward_cfg}))
    env.reset(seed=0)
    delays = []
    for _ in range(40):
        _, reward, *_, info = env.step(np.ones(env.action_space.shape))
        assert info["cost_delay"] == pytest.approx(14.1 * info["incident_delay_veh_h"], rel=1e-12)
        parts = info["cost_damage"] + info["cost_estimation"] + info["cost_energy"]
        assert info["cost_total"] == pytest.approx(parts + info["cost_carbon"] + info["cost_delay"])
        assert -reward == pytest.approx(info["cost_total"] * scenario.reward.scale, rel=1e-12)
        assert info["node_cost"].sum() == pytest.approx(info["cost_total"], rel=1e-9)
        delays.append(info["incident_delay_veh_h"])
    assert max(delays) > 0  # accidents happened and slowed traffic
    assert load_scenario("helsinki").reward.delay_cost_per_veh_h > 0
    assert load_scenario("coquimbo").reward.delay_cost_per_veh_h > 0
    assert load_scenario("downtown").reward.delay_cost_per_veh_h == 0


def test_reset_keeps_the_zone_times_of_its_city(monkeypatch: pytest.MonkeyPatch) -> None:
    """The all-zones search runs once per city, not once per reset."""
    calls: list[object] = []
    search = demand._zone_free_flow_times

    def counted(city: Any) -> np.ndarray:
        calls.append(city)
        return search(city)

    env = CityEnv("tiny")
    env.reset(seed=0)  # the city's first reset may search (or a test before did)
    times = demand.zone_free_flow_times(env.city)
    monkeypatch.setattr(demand, "_zone_free_flow_times", counted)
    for seed in (1, 2, 3):
        env.reset(seed=seed)
        assert demand.zone_free_flow_times(env.city) is times
    assert calls == []
    other = CityEnv("ringtown")
    other.reset(seed=0)
    assert demand.zone_free_flow_times(other.city) is not times
    assert calls in ([], [other.city])  # its own, searched once at most
    assert not times.flags.writeable


def test_an_undetected_cut_is_not_in_the_operators_prediction() -> None:
    """The operator predicts at the capacities it knows: an undetected accident's slowdown
    is left out (so it shows as a residual), a detected one is in the routed traffic."""
    day = _downtown_day()
    link = int(np.argmax(_interval(day, 0, detected=True).assignment.flows_veh_h))
    hidden = _interval(day, link, detected=False)
    assert hidden.expected is not None and hidden.expected_capacity_veh_h is not None
    assert hidden.expected_capacity_veh_h[link] == day.network.capacity_veh_h[link]
    assert hidden.assignment.times_min[link] > hidden.expected.times_min[link]
    np.testing.assert_array_equal(hidden.assignment.flows_veh_h, hidden.expected.flows_veh_h)
    assert _interval(day, link, detected=True).expected is None  # all cuts known


def test_a_residual_the_prediction_leaves_builds_evidence() -> None:
    """Readings above the prediction at one node raise its CUSUM; none without it."""
    from simcity.monitoring.beliefs import observe
    from simcity.monitoring.incidents import Incidents

    cfg = load_scenario("downtown").monitoring
    n = 4
    normal = np.ones((n, 3))
    predicted = normal.copy()
    predicted[2, 0] = 0.5  # the operator expects less congestion at node 2 than there is
    args = (Incidents.empty(), normal.copy(), np.zeros((n, 3)), np.full(n, 5.0))
    common = dict(up_share=np.ones((n, 3)), draws=np.zeros((n, 3)), cfg=cfg)
    with_model = observe(normal, *args, **common, predicted=predicted)
    without = observe(normal, *args, **common)
    assert with_model.anomaly[2, 0] > 0 and np.count_nonzero(with_model.anomaly) == 1
    assert not without.anomaly.any()


def test_air_quality_stations_are_the_same_every_day_of_a_city() -> None:
    env = CityEnv("downtown")
    env.reset(seed=1)
    assert env.world is not None
    first = np.array(env.world.monitoring.installed)
    env.reset(seed=2)
    assert env.world is not None
    np.testing.assert_array_equal(env.world.monitoring.installed, first)
    assert 0 < first[:, 1].sum() < len(first)  # some nodes have a station, not all
