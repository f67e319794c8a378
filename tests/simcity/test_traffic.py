"""Traffic: BPR times, all-or-nothing loading and user-equilibrium assignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy_networks import make_network

import simcity.traffic.assignment as traffic
from simcity.city.network import Network
from simcity.city.tntp import read_tntp, read_tntp_flows
from simcity.errors import SimcityError
from simcity.traffic.assignment import all_or_nothing, assign, bpr_time, relative_gap

SIOUX_FALLS_TSTT_VEH_MIN = 7_480_225.3  # best-known equilibrium, SiouxFalls_flow.tntp


def sioux_falls_dir() -> Path:
    """Where the shared reference data lives (``shared/`` beside the clone in CI)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "tntp" / "SiouxFalls"


needs_sioux_falls = pytest.mark.skipif(
    not sioux_falls_dir().is_dir(), reason=f"reference data missing: {sioux_falls_dir()}"
)


def node_balance(net: Network, flows: np.ndarray) -> np.ndarray:
    """Inflow minus outflow at every node (N,)."""
    n = net.num_nodes
    return np.bincount(net.head, flows, minlength=n) - np.bincount(net.tail, flows, minlength=n)


def demand_balance(net: Network, od: np.ndarray) -> np.ndarray:
    """Attracted minus produced trips at every node (N,), the diagonal ignored."""
    od = od - np.diag(np.diag(od))
    balance = np.zeros(net.num_nodes)
    np.add.at(balance, net.zone_nodes, od.sum(axis=0) - od.sum(axis=1))
    return balance


def assert_conserves(net: Network, od: np.ndarray, flows: np.ndarray) -> None:
    assert np.all(np.isfinite(flows)) and (flows >= 0).all()
    scale = max(1.0, float(od.sum()))
    np.testing.assert_allclose(node_balance(net, flows), demand_balance(net, od), atol=1e-9 * scale)


# Zone node 0 to zone node 3 by 0-1-3 or 0-2-3; the second link of each route is free.
TWO_ROUTES = [(0, 1, 10.0, 1000.0), (1, 3, 0.0, 1e9), (0, 2, 15.0, 2000.0), (2, 3, 0.0, 1e9)]
ONE_WAY = np.array([[0.0, 3000.0], [0.0, 0.0]])


def test_bpr_time_of_one_link_by_hand() -> None:
    # 10 min * (1 + 0.15 * (1500 / 1000) ** 4) = 10 * (1 + 0.15 * 5.0625)
    time_min = bpr_time(np.array([1500.0]), np.array([10.0]), np.array([1000.0]))
    assert time_min[0] == pytest.approx(17.59375, rel=1e-12)


def test_all_or_nothing_takes_the_shorter_route() -> None:
    net = make_network(TWO_ROUTES, [0, 3])
    assert all_or_nothing(net, ONE_WAY, np.array([10.0, 0, 15, 0])).tolist() == [3000, 3000, 0, 0]
    assert all_or_nothing(net, ONE_WAY, np.array([16.0, 0, 15, 0])).tolist() == [0, 0, 3000, 3000]


@pytest.mark.parametrize("method", traffic.METHODS)
def test_two_routes_meet_the_analytic_equilibrium(method: str) -> None:
    # Linear delays: 10 (1 + v / 1000) = 15 (1 + (3000 - v) / 2000)  =>  v = 27.5 / 0.0175.
    net = make_network(TWO_ROUTES, [0, 3], b=1.0, power=1.0)
    result = assign(net, ONE_WAY, rel_gap=1e-9, method=method, max_iterations=2000)
    on_first = 27.5 / 0.0175
    assert result.converged and result.rel_gap <= 1e-9
    np.testing.assert_allclose(
        result.flows_veh_h, [on_first, on_first, 3000 - on_first, 3000 - on_first], rtol=1e-6
    )
    assert result.times_min[0] == pytest.approx(result.times_min[2], rel=1e-6)
    assert result.times_min[0] == pytest.approx(10 + on_first / 100, rel=1e-6)
    assert result.tstt_veh_min == pytest.approx(3000 * result.times_min[0], rel=1e-6)


@needs_sioux_falls
def test_sioux_falls_matches_the_best_known_equilibrium() -> None:
    city = read_tntp(sioux_falls_dir())
    assert city.od_veh_h is not None
    result = assign(city.network, city.od_veh_h, rel_gap=1e-4)
    assert result.converged and result.rel_gap <= 1e-4
    assert result.num_iterations <= 115  # 97 here; plain FW takes ~1000, AequilibraE's bfw 118
    assert result.tstt_veh_min == pytest.approx(SIOUX_FALLS_TSTT_VEH_MIN, rel=1e-3)
    best = read_tntp_flows(sioux_falls_dir() / "SiouxFalls_flow.tntp")
    best_volume = dict(
        zip(zip(best.init_node, best.term_node, strict=True), best.volume_veh_h, strict=True)
    )
    reference = np.array([best_volume[link] for link in city.graph.edges])  # (L,) in our link order
    assert np.mean(np.abs(result.flows_veh_h - reference) / reference) < 0.01
    assert relative_gap(city.network, city.od_veh_h, result.flows_veh_h) == pytest.approx(
        result.rel_gap, rel=1e-6
    )


@st.composite
def random_cities(draw: st.DrawFn) -> tuple[Network, np.ndarray]:
    """A ring of intersections with chords, and zones hung on it by two-way connectors.

    Strongly connected whatever the zones' through flags, since no route needs a zone.
    """
    num_cross = draw(st.integers(2, 7))
    num_zones = draw(st.integers(2, 5))
    ints = st.integers(0, num_cross - 1)
    pairs = {(i, (i + 1) % num_cross) for i in range(num_cross) if num_cross > 1}
    pairs |= {(u, v) for u, v in draw(st.lists(st.tuples(ints, ints), max_size=8)) if u != v}
    links = [(u, v, draw(st.floats(0.5, 10)), draw(st.floats(100, 2000))) for u, v in sorted(pairs)]
    for z in range(num_zones):
        zone, at = num_cross + z, draw(ints)
        t0 = draw(st.sampled_from([0.0, 0.5, 2.0]))  # zero-time connectors too
        links += [(zone, at, t0, 5000.0), (at, zone, t0, 5000.0)]
    through = [True] * num_cross + draw(
        st.lists(st.booleans(), min_size=num_zones, max_size=num_zones)
    )
    zones = list(range(num_cross, num_cross + num_zones))
    net = make_network(links, zones, through=through)
    cells = st.floats(0, 800) | st.just(0.0)
    od = np.array(draw(st.lists(cells, min_size=num_zones**2, max_size=num_zones**2)))
    return net, od.reshape(num_zones, num_zones)


@settings(max_examples=60, deadline=None)
@given(random_cities(), st.sampled_from(traffic.METHODS))
def test_flows_conserve_demand_and_reach_the_gap(
    city: tuple[Network, np.ndarray], method: str
) -> None:
    net, od = city
    result = assign(net, od, rel_gap=1e-3, max_iterations=20_000, method=method)
    assert_conserves(net, od, result.flows_veh_h)
    assert np.all(np.isfinite(result.times_min))
    assert result.converged and 0 <= result.rel_gap <= 1e-3
    assert relative_gap(net, od, result.flows_veh_h) == pytest.approx(result.rel_gap, abs=1e-9)
    # A zone that may not be passed through sends out exactly what it produces.
    od0 = od - np.diag(np.diag(od))
    for k, zone in enumerate(net.zone_nodes):
        if not net.through[zone]:
            assert result.flows_veh_h[net.tail == zone].sum() == pytest.approx(
                od0[k].sum(), abs=1e-6
            )


@needs_sioux_falls
def test_warm_start_reaches_the_same_equilibrium_in_fewer_iterations() -> None:
    city = read_tntp(sioux_falls_dir())
    net, od = city.network, np.asarray(city.od_veh_h)
    before = assign(net, od)
    new_od = od * np.random.default_rng(7).uniform(0.97, 1.03, od.shape)
    cold = assign(net, new_od)
    warm = assign(net, new_od, warm_start=before.flows_veh_h, warm_start_od_veh_h=od)
    assert warm.converged and cold.converged
    assert warm.num_iterations < 0.7 * cold.num_iterations
    assert warm.tstt_veh_min == pytest.approx(cold.tstt_veh_min, rel=1e-3)
    assert np.mean(np.abs(warm.flows_veh_h - cold.flows_veh_h) / cold.flows_veh_h) < 0.01
    assert_conserves(net, new_od, warm.flows_veh_h)
    # Without the old demand the flows only set the first times; still an equilibrium.
    costs_only = assign(net, new_od, warm_start=before.flows_veh_h)
    assert costs_only.converged
    assert costs_only.tstt_veh_min == pytest.approx(cold.tstt_veh_min, rel=1e-3)


@needs_sioux_falls
def test_warm_start_is_feasible_for_the_new_demand_from_the_first_iterate() -> None:
    city = read_tntp(sioux_falls_dir())
    net, od = city.network, np.asarray(city.od_veh_h)
    before = assign(net, od, rel_gap=1e-2)
    new_od = od.copy()
    new_od[0, 1:] *= 1.5  # zone 1 sends half as much again
    new_od[5, :] *= 0.2  # zone 6 sends little
    first = assign(
        net, new_od, warm_start=before.flows_veh_h, warm_start_od_veh_h=od, max_iterations=2
    )
    assert not first.converged
    assert_conserves(net, new_od, first.flows_veh_h)


def test_unchanged_demand_warm_starts_at_the_old_equilibrium() -> None:
    net = make_network(TWO_ROUTES, [0, 3], b=1.0, power=1.0)
    before = assign(net, ONE_WAY, rel_gap=1e-8)
    again = assign(
        net, ONE_WAY, rel_gap=1e-8, warm_start=before.flows_veh_h, warm_start_od_veh_h=ONE_WAY
    )
    assert again.num_iterations == 1 and again.converged
    np.testing.assert_array_equal(again.flows_veh_h, before.flows_veh_h)


@needs_sioux_falls
def test_a_capacity_cut_reroutes_flow() -> None:
    city = read_tntp(sioux_falls_dir())
    net, od = city.network, np.asarray(city.od_veh_h)
    before = assign(net, od)
    busiest = int(np.argmax(before.flows_veh_h))
    capacity = net.capacity_veh_h.copy()
    capacity[busiest] *= 0.2
    after = assign(
        net, od, capacity_veh_h=capacity, warm_start=before.flows_veh_h, warm_start_od_veh_h=od
    )
    assert after.converged
    assert after.flows_veh_h[busiest] < 0.8 * before.flows_veh_h[busiest]
    assert after.tstt_veh_min > before.tstt_veh_min
    assert_conserves(net, od, after.flows_veh_h)
    np.testing.assert_array_equal(net.capacity_veh_h, city.network.capacity_veh_h)  # untouched


def test_trips_never_pass_through_a_zone_that_forbids_it() -> None:
    # Zones 0, 1, 2 in a row (0 <-> 1 <-> 2, 1 min a link); a 10-minute bypass 0 -> 3 -> 2.
    links = [(0, 1, 1.0, 1e4), (1, 0, 1.0, 1e4), (1, 2, 1.0, 1e4), (2, 1, 1.0, 1e4)]
    links += [(0, 3, 5.0, 1e4), (3, 2, 5.0, 1e4)]
    od = np.zeros((3, 3))
    od[0, 2] = 100.0
    od[0, 1] = 10.0
    passable = assign(make_network(links, [0, 1, 2]), od, rel_gap=1e-8)
    assert passable.flows_veh_h.tolist() == [110, 0, 100, 0, 0, 0]
    closed = make_network(links, [0, 1, 2], through=[True, False, True, True])
    result = assign(closed, od, rel_gap=1e-8)
    assert result.flows_veh_h.tolist() == [10, 0, 0, 0, 100, 100]
    assert_conserves(closed, od, result.flows_veh_h)


def test_demand_without_a_path_names_the_zone_pair() -> None:
    links = [(0, 1, 1.0, 1e3), (1, 2, 1.0, 1e3)]  # nothing leads back to node 0
    with pytest.raises(SimcityError, match=r"zone 2 \(node 2\) to zone 0 \(node 0\)") as error:
        assign(make_network(links, [0, 1, 2]), np.array([[0, 1.0, 1], [0, 0, 1], [5, 0, 0]]))
    assert error.value.field == "od"
    assert error.value.expected == "a path from every origin to every destination with demand"
    # A zone that may not be passed through cuts the only path just the same.
    closed = make_network(links, [0, 1, 2], through=[True, False, True])
    with pytest.raises(SimcityError, match=r"zone 0 \(node 0\) to zone 2"):
        assign(closed, np.array([[0, 0, 1.0], [0, 0, 0], [0, 0, 0]]))


@pytest.mark.parametrize(
    ("od", "kwargs", "field"),
    [
        (np.zeros((3, 3)), {}, "od"),
        (np.array([[0, -1.0], [0, 0]]), {}, "od"),
        (np.array([[0, np.nan], [0, 0]]), {}, "od"),
        (ONE_WAY, {"capacity_veh_h": np.array([1000.0, 0, 1, 1])}, "capacity_veh_h"),
        (ONE_WAY, {"capacity_veh_h": np.ones(3)}, "capacity_veh_h"),
        (ONE_WAY, {"method": "msa"}, "method"),
        (ONE_WAY, {"rel_gap": 0.0}, "rel_gap/max_iterations"),
        (ONE_WAY, {"max_iterations": 1}, "rel_gap/max_iterations"),
        (ONE_WAY, {"warm_start": np.full(4, -1.0)}, "warm_start"),
        (
            ONE_WAY,
            {"warm_start": np.zeros(4), "warm_start_od_veh_h": np.zeros(2)},
            "warm_start_od_veh_h",
        ),
    ],
)
def test_bad_inputs_raise_simcity_error(od: np.ndarray, kwargs: dict, field: str) -> None:
    with pytest.raises(SimcityError) as error:
        assign(make_network(TWO_ROUTES, [0, 3]), od, **kwargs)
    assert error.value.field == field


def test_parallel_links_are_refused() -> None:
    with pytest.raises(SimcityError, match="same pair of nodes"):
        assign(make_network([*TWO_ROUTES, (0, 1, 3.0, 100.0)], [0, 3]), ONE_WAY)


def test_no_demand_gives_no_flow() -> None:
    result = assign(make_network(TWO_ROUTES, [0, 3]), np.eye(2) * 50)  # only the ignored diagonal
    assert result.flows_veh_h.tolist() == [0, 0, 0, 0] and result.converged
    assert result.times_min.tolist() == [10, 0, 15, 0]
