"""Speed of `simcity.traffic.assignment.assign` against AequilibraE at equal relative gap.

Not a test: prints times, iterations and ratios. Run from the repository root:

    AEQ_SHOW_PROGRESS=FALSE python bench/traffic_speed.py [--cores N]

For every network: our bi-conjugate Frank–Wolfe to ``rel_gap`` (best of 3), then, if
``aequilibrae`` imports, its "bfw" on the same links, demand and BPR parameters in the
same process (best of 3; graph building not timed, as building our `Network` is not).
Both gaps are recomputed with `simcity.traffic.assignment.relative_gap`, one definition for both;
AequilibraE's own figure lags an iteration, so its target is tightened until the
recomputed gap reaches ``rel_gap``.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from simcity.city.graph import City
from simcity.city.network import Network
from simcity.city.tntp import read_tntp
from simcity.config.scenario import bundled_scenarios, load_scenario
from simcity.traffic.assignment import assign, relative_gap
from simcity.traffic.paths import PathLoader
from simcity.world import World

os.environ.setdefault("AEQ_SHOW_PROGRESS", "FALSE")

SIOUX_FALLS = Path(__file__).resolve().parents[2] / "shared" / "data" / "tntp" / "SiouxFalls"
REPEATS = 3


class Run(NamedTuple):
    """One solver's best-of-N run."""

    seconds: float
    iterations: int
    rel_gap: float  # recomputed with `relative_gap`
    note: str = ""


def best_of(
    repeats: int, run: Callable[[], tuple[np.ndarray, int]]
) -> tuple[float, np.ndarray, int]:
    """Fastest wall time of ``run`` and its (flows, iterations)."""
    best = np.inf
    flows, iterations = np.zeros(0), 0
    for _ in range(repeats):
        start = time.perf_counter()
        flows, iterations = run()
        best = min(best, time.perf_counter() - start)
    return best, flows, iterations


def run_ours(network: Network, od: np.ndarray, rel_gap: float, cores: int) -> Run:
    """Our default assignment (bfw) to ``rel_gap``, searches on ``cores`` threads."""
    loader = PathLoader(network, od, workers=cores)  # the search graph, built once (untimed)

    def once() -> tuple[np.ndarray, int]:
        result = assign(network, od, rel_gap=rel_gap, max_iterations=5000, loader=loader)
        return result.flows_veh_h, result.num_iterations

    seconds, flows, iterations = best_of(REPEATS, once)
    return Run(seconds, iterations, relative_gap(network, od, flows))


def run_aequilibrae(
    network: Network, od: np.ndarray, rel_gap: float, cores: int | None
) -> Run | None:
    """AequilibraE's bfw on the same problem to the same recomputed gap; None without it."""
    try:
        import pandas as pd
        from aequilibrae.matrix import AequilibraeMatrix
        from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass
    except ImportError:
        return None

    num_links = len(network.tail)
    zones = np.asarray(network.zone_nodes) + 1  # AequilibraE ids start at 1
    graph = Graph()
    graph.network = pd.DataFrame(
        {
            "link_id": np.arange(1, num_links + 1),
            "a_node": np.asarray(network.tail) + 1,
            "b_node": np.asarray(network.head) + 1,
            "direction": np.ones(num_links, dtype=np.int8),
            "capacity": network.capacity_veh_h,
            # AequilibraE refuses zero free-flow times.
            "free_flow_time": np.maximum(network.free_flow_time_min, 1e-6),
            "b": network.bpr_b,
            "power": network.bpr_power,
        }
    )
    graph.prepare_graph(zones.astype(np.int64), remove_dead_ends=False)
    graph.set_graph("free_flow_time")
    graph.set_skimming(["free_flow_time"])
    # Ours never passes through zones with through=False; block exactly when any is.
    graph.set_blocked_centroid_flows(bool((~np.asarray(network.through)[network.zone_nodes]).any()))
    matrix = AequilibraeMatrix()
    matrix.create_empty(memory_only=True, zones=len(zones), matrix_names=["demand"])
    matrix.index[:] = zones
    matrix.matrices[:, :, 0] = od
    matrix.computational_view(["demand"])

    def once(target: float) -> tuple[np.ndarray, int]:
        traffic = TrafficClass("car", graph, matrix)
        assignment = TrafficAssignment()
        assignment.set_classes([traffic])
        assignment.set_vdf("BPR")
        assignment.set_vdf_parameters({"alpha": "b", "beta": "power"})
        assignment.set_capacity_field("capacity")
        assignment.set_time_field("free_flow_time")
        if cores is not None:
            assignment.set_cores(cores)
        assignment.set_algorithm("bfw")
        assignment.max_iter = 5000
        assignment.rgap_target = float(target)
        assignment.execute()
        results = assignment.results()
        flows = np.zeros(num_links)
        flows[results.index.to_numpy() - 1] = results["demand_ab"].to_numpy()
        return flows, int(assignment.report()["iteration"].max())

    target = rel_gap
    for _ in range(6):
        seconds, flows, iterations = best_of(REPEATS, functools.partial(once, target))
        gap = relative_gap(network, od, flows)
        if gap <= rel_gap:
            break
        target *= 0.7
    return Run(seconds, iterations, gap, f"target {target:.3g}")


def bench_network(
    name: str, network: Network, od: np.ndarray, rel_gap: float, cores: int | None = None
) -> None:
    """Print our time and AequilibraE's (if installed) to ``rel_gap`` on one network."""
    print(
        f"\n{name}: {network.num_nodes} nodes, {len(network.tail)} links, "
        f"{len(network.zone_nodes)} zones, {od.sum():,.0f} veh/h, rel gap {rel_gap:g}"
    )
    ours = run_ours(network, od, rel_gap, cores or os.cpu_count() or 1)
    print(
        f"  simcity bfw     {ours.seconds:8.3f} s  {ours.iterations:4d} it  "
        f"gap {ours.rel_gap:.2e}  (cores {cores or 'all'})"
    )
    theirs = run_aequilibrae(network, od, rel_gap, cores)
    if theirs is None:
        print("  aequilibrae     not installed (pip install -e '.[bench]')")
        return
    print(
        f"  aequilibrae bfw {theirs.seconds:8.3f} s  {theirs.iterations:4d} it  "
        f"gap {theirs.rel_gap:.2e}  ({theirs.note}, cores {cores or 'all'})"
    )
    print(f"  ratio ours/theirs {ours.seconds / theirs.seconds:.2f}")


def sioux_falls() -> tuple[Network, np.ndarray]:
    """The Sioux Falls network and trips of the shared reference data."""
    city = read_tntp(SIOUX_FALLS)
    assert city.od_veh_h is not None
    return city.network, np.asarray(city.od_veh_h)


def synthetic_grid(
    side: int = 45,
    num_zones: int = 400,
    total_veh_h: float = 280_000.0,
    seed: int = 0,
) -> tuple[Network, np.ndarray]:
    """A ``side`` x ``side`` two-way grid city with gravity demand between random zones.

    Blocks are 0.5 km; every fifth street is an arterial (50 km/h, 3,600 veh/h), the rest
    are local streets (30 km/h, 900 veh/h), each +-10-20% at random. Demand between zones
    falls with distance as ``exp(-d / 4 km)``.
    """
    rng = np.random.default_rng(seed)
    index = np.arange(side * side).reshape(side, side)
    pairs = [(index[:, :-1], index[:, 1:]), (index[:-1, :], index[1:, :])]
    tail = np.concatenate([a.ravel() for a, b in pairs] + [b.ravel() for a, b in pairs])
    head = np.concatenate([b.ravel() for a, b in pairs] + [a.ravel() for a, b in pairs])
    num_links = tail.size
    row_t, col_t = np.divmod(tail, side)
    row_h, col_h = np.divmod(head, side)
    arterial = ((row_t == row_h) & (row_t % 5 == 0)) | ((col_t == col_h) & (col_t % 5 == 0))
    block_km = 0.5
    speed_kmh = np.where(arterial, 50.0, 30.0) * rng.uniform(0.9, 1.1, num_links)
    capacity = np.where(arterial, 3600.0, 900.0) * rng.uniform(0.8, 1.2, num_links)
    zones = np.sort(rng.choice(side * side, num_zones, replace=False))
    xy_km = np.stack(np.divmod(zones, side), axis=1) * block_km  # (Z, 2)
    distance_km = np.sqrt(((xy_km[:, None] - xy_km[None]) ** 2).sum(-1))  # (Z, Z)
    population = rng.lognormal(0.0, 0.7, num_zones)
    jobs = rng.lognormal(0.0, 0.9, num_zones)
    od = population[:, None] * jobs[None, :] * np.exp(-distance_km / 4.0)  # (Z, Z)
    np.fill_diagonal(od, 0.0)
    od *= total_veh_h / od.sum()
    network = Network(
        num_nodes=side * side,
        tail=tail,
        head=head,
        capacity_veh_h=capacity,
        free_flow_time_min=block_km / speed_kmh * 60.0,
        bpr_b=np.full(num_links, 0.15),
        bpr_power=np.full(num_links, 4.0),
        zone_nodes=zones,
        through=np.ones(side * side, dtype=bool),
    )
    return network, od


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rel-gap", type=float, default=1e-4)
    parser.add_argument("--cores", type=int, default=None, help="both solvers' cores (default all)")
    parser.add_argument("--large", default="metro", help="Bundled large city")
    parser.add_argument("--days", nargs="*", default=None, help="Scenarios to simulate a day of")
    args = parser.parse_args()
    if SIOUX_FALLS.is_dir():
        bench_network("Sioux Falls", *sioux_falls(), args.rel_gap, args.cores)
    else:
        print(f"Sioux Falls skipped: no {SIOUX_FALLS}")
    bench_network("Grid 45x45", *synthetic_grid(), args.rel_gap, args.cores)
    city, od = large_bundled_city(args.large)
    bench_network(f"{args.large} (bundled)", city.network, od, args.rel_gap, args.cores)
    print()
    simulated_days(args.days)


def large_bundled_city(name: str) -> tuple[City, np.ndarray]:
    """The bundled large city and its peak-hour (08:00) demand."""
    world = World(load_scenario(name))
    return world.city, world.od_now(8.0)


def simulated_days(names: list[str] | None) -> None:
    """One simulated day's wall time (world only, no policy) for each bundled scenario."""
    print("One simulated day per bundled scenario (traffic, energy, monitoring; no policy):")
    print(
        f"{'scenario':<20} {'nodes':>6} {'links':>6} {'steps':>5} {'wall s':>8} {'iters/step':>10}"
    )
    for name in names or list(bundled_scenarios()):
        started = time.perf_counter()
        world = World(load_scenario(name))
        records = world.run()
        wall_s = time.perf_counter() - started
        iterations = np.mean([r.assignment_iterations for r in records])
        print(
            f"{name:<20} {world.city.num_nodes:>6} {world.city.num_links:>6} "
            f"{len(records):>5} {wall_s:>8.2f} {iterations:>10.1f}"
        )


if __name__ == "__main__":
    main()
