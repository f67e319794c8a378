"""All-or-nothing path loads: the compiled searches against a plain walk, kept loaders, threads."""

from __future__ import annotations

import numpy as np
import pytest
from toy_networks import make_network

import simcity.traffic.paths as paths
from simcity.city.network import Network
from simcity.errors import SimcityError
from simcity.traffic.assignment import all_or_nothing, assign

SIOUX_FALLS_TSTT_VEH_MIN = 7_480_225.3  # best-known equilibrium, SiouxFalls_flow.tntp


def grid_city(side: int, seed: int) -> tuple[Network, np.ndarray]:
    """A two-way ``side`` x ``side`` grid, random times and capacities, half its nodes zones."""
    rng = np.random.default_rng(seed)
    links = []
    for r in range(side):
        for c in range(side):
            node = r * side + c
            for other in ([node + 1] if c + 1 < side else []) + (
                [node + side] if r + 1 < side else []
            ):
                for tail, head in ((node, other), (other, node)):
                    links.append((tail, head, rng.uniform(0.5, 2.0), rng.uniform(500, 2000)))
    zones = sorted(rng.choice(side * side, side * side // 2, replace=False).tolist())
    od = rng.uniform(0.0, 200.0, (len(zones), len(zones))) * (rng.random((len(zones),) * 2) < 0.7)
    return make_network(links, zones), od


def reference_all_or_nothing(net: Network, od: np.ndarray, times: np.ndarray) -> np.ndarray:
    """All-or-nothing flows by one plain Dijkstra per origin and a walk up each path."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    graph = csr_matrix((np.maximum(times, 1e-6), (net.tail, net.head)), shape=(net.num_nodes,) * 2)
    link_of = {(int(t), int(h)): k for k, (t, h) in enumerate(zip(net.tail, net.head, strict=True))}
    flows = np.zeros(len(net.tail))
    for o, origin in enumerate(net.zone_nodes):
        _, pred = dijkstra(graph, indices=int(origin), return_predecessors=True)
        for d, dest in enumerate(net.zone_nodes):
            node = int(dest)
            while o != d and node != origin:
                flows[link_of[int(pred[node]), node]] += od[o, d]
                node = int(pred[node])
    return flows


def test_all_or_nothing_matches_a_plain_path_walk() -> None:
    net, od = grid_city(7, seed=3)
    times = np.random.default_rng(4).uniform(0.5, 3.0, len(net.tail))
    np.testing.assert_allclose(
        all_or_nothing(net, od, times), reference_all_or_nothing(net, od, times), rtol=1e-12
    )


def test_a_kept_loader_gives_the_same_bits_as_a_new_one() -> None:
    net, od = grid_city(8, seed=11)
    base = assign(net, od, rel_gap=1e-4)
    rng = np.random.default_rng(5)
    calls = []  # capacity cuts re-solved from the baseline, as a traffic day does
    for _ in range(6):
        capacity = net.capacity_veh_h.copy()
        capacity[rng.choice(len(capacity), 2, replace=False)] *= rng.uniform(0.1, 0.6)
        demand = od * rng.uniform(0.9, 1.1)
        calls.append(
            dict(
                capacity_veh_h=capacity,
                rel_gap=1e-2,
                max_iterations=6,
                warm_start=base.flows_veh_h,
                warm_start_od_veh_h=od,
                od=demand,
            )
        )
    fresh = [assign(net, c["od"], **{k: v for k, v in c.items() if k != "od"}) for c in calls]
    loader = paths.PathLoader(net, od)
    assign(net, od, rel_gap=1e-5, loader=loader)  # history the loader must not remember
    for order in (range(6), reversed(range(6))):
        for k in order:
            c = calls[k]
            kept = assign(net, c["od"], **{k: v for k, v in c.items() if k != "od"}, loader=loader)
            for got, want in zip(kept, fresh[k], strict=True):
                np.testing.assert_array_equal(got, want)


def test_a_loader_falls_back_for_other_origins_and_refuses_another_network() -> None:
    net, od = grid_city(5, seed=2)
    loader = paths.PathLoader(net, od)
    fewer = od.copy()
    fewer[0] = 0.0  # one origin less: the loader does not fit, a new one is used
    assert loader.fits(net, od) and not loader.fits(net, fewer)
    np.testing.assert_array_equal(
        assign(net, fewer, loader=loader).flows_veh_h, assign(net, fewer).flows_veh_h
    )
    other, _ = grid_city(5, seed=9)  # another zone set
    with pytest.raises(SimcityError, match="another network") as error:
        assign(other, od, loader=loader)
    assert error.value.field == "loader"
    with pytest.raises(SimcityError, match="not built for"):
        paths.PathLoader(net, fewer).load(net.free_flow_time_min, od)


def test_searches_split_over_threads_give_the_same_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    net, od = grid_city(9, seed=4)  # 40 zones
    monkeypatch.setattr(paths, "_MIN_ORIGINS_PER_WORKER", 4)
    times = np.random.default_rng(6).uniform(0.5, 3.0, len(net.tail))
    alone = paths.PathLoader(net, od).load(times, od)
    for workers in (2, 3, 7):
        split = paths.PathLoader(net, od, workers=workers).load(times, od)
        np.testing.assert_array_equal(split, alone)
    serial = assign(net, od, rel_gap=1e-6)
    parallel = assign(net, od, rel_gap=1e-6, loader=paths.PathLoader(net, od, workers=2))
    for got, want in zip(parallel, serial, strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(SimcityError, match="at least one worker"):
        paths.PathLoader(net, od, workers=0)


def test_zero_time_links_and_ties_load_every_trip_once() -> None:
    net, od = grid_city(6, seed=8)
    times = np.zeros(len(net.tail))  # every path ties at zero
    flows = paths.PathLoader(net, od).load(times, od)
    # Each trip leaves its origin once and arrives once: flow out of origins and into
    # destinations (net of through traffic) equals the demand.
    tails, heads = np.asarray(net.tail), np.asarray(net.head)
    n = net.num_nodes
    net_out = np.bincount(tails, flows, n) - np.bincount(heads, flows, n)
    want = np.zeros(n)
    np.add.at(want, net.zone_nodes, od.sum(axis=1) - od.sum(axis=0))
    np.testing.assert_allclose(net_out, want, rtol=0, atol=1e-9 * od.sum())
    np.testing.assert_array_equal(flows, paths.PathLoader(net, od).load(times, od))


def test_a_forked_child_searches_on_its_own_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    net, od = grid_city(9, seed=4)
    monkeypatch.setattr(paths, "_MIN_ORIGINS_PER_WORKER", 4)
    times = np.asarray(net.free_flow_time_min, dtype=float)
    want = paths.PathLoader(net, od, workers=2).load(times, od)  # the parent's pool is up
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply_async(paths.PathLoader(net, od, workers=2).load, (times, od)).get(60)
    np.testing.assert_array_equal(got, want)
