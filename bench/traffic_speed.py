"""Speed of `simcity.traffic.assignment.assign` against AequilibraE at equal relative gap.

Not a test: prints times, iterations and ratios. Run from the repository root:

    AEQ_SHOW_PROGRESS=FALSE python bench/traffic_speed.py [--cores N] [--networks ...]
        [--out bench/results/traffic_speed.json]

For every network: our bi-conjugate Frank–Wolfe to ``rel_gap`` (best of 3), then, if
``aequilibrae`` imports, its "bfw" on the same links, demand and BPR parameters in the
same process (best of 3). The comparison leans against us: our timer holds building the
`Network` from its source and the `PathLoader` as well as the assignment, AequilibraE's
only ``assignment.execute()`` (graph, matrix and assignment set up outside it, and no
skimming, which we do not do either). Networks: Sioux Falls, a synthetic grid, the bundled
``metro`` and the two real cities ``helsinki`` and ``coquimbo`` at their 08:00 demand.
Both gaps are recomputed with `simcity.traffic.assignment.relative_gap`, one definition for both;
AequilibraE's own figure lags an iteration, so its target is tightened until the
recomputed gap reaches ``rel_gap``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from simcity.city.build import build_city
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


class Timed(NamedTuple):
    """One run: the seconds its timer held, and what it found."""

    seconds: float
    flows: np.ndarray
    iterations: int


def best_of(repeats: int, run: Callable[[], Timed]) -> Timed:
    """The fastest of ``repeats`` runs of ``run``, each timing what it means to time."""
    return min((run() for _ in range(repeats)), key=lambda timed: timed.seconds)


def run_ours(
    build: Callable[[], Network], od: np.ndarray, rel_gap: float, cores: int
) -> tuple[Network, Run]:
    """Our default assignment (bfw) to ``rel_gap``, searches on ``cores`` threads; the
    network (``build``) and its search graph are made inside the timer at every repeat."""

    def once() -> Timed:
        start = time.perf_counter()
        network = build()
        loader = PathLoader(network, od, workers=cores)
        result = assign(network, od, rel_gap=rel_gap, max_iterations=5000, loader=loader)
        return Timed(time.perf_counter() - start, result.flows_veh_h, result.num_iterations)

    best = best_of(REPEATS, once)
    network = build()
    return network, Run(best.seconds, best.iterations, relative_gap(network, od, best.flows))


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
    graph.set_graph("free_flow_time")  # no set_skimming: skims are work we do not do
    # Ours never passes through zones with through=False; block exactly when any is.
    graph.set_blocked_centroid_flows(bool((~np.asarray(network.through)[network.zone_nodes]).any()))
    matrix = AequilibraeMatrix()
    matrix.create_empty(memory_only=True, zones=len(zones), matrix_names=["demand"])
    matrix.index[:] = zones
    matrix.matrices[:, :, 0] = od
    matrix.computational_view(["demand"])

    def once(target: float) -> Timed:
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
        start = time.perf_counter()
        assignment.execute()
        seconds = time.perf_counter() - start
        results = assignment.results()
        flows = np.zeros(num_links)
        flows[results.index.to_numpy() - 1] = results["demand_ab"].to_numpy()
        return Timed(seconds, flows, int(assignment.report()["iteration"].max()))

    target = rel_gap
    for _ in range(6):
        best = best_of(REPEATS, functools.partial(once, target))
        gap = relative_gap(network, od, best.flows)
        if gap <= rel_gap:
            break
        target *= 0.7
    return Run(best.seconds, best.iterations, gap, f"target {target:.3g}")


def bench_network(
    name: str,
    build: Callable[[], Network],
    od: np.ndarray,
    rel_gap: float,
    cores: int | None = None,
) -> dict[str, Any]:
    """Print our time and AequilibraE's (if installed) to ``rel_gap`` on one network, and
    return both as a record."""
    load_before = os.getloadavg()[0]
    network, ours = run_ours(build, od, rel_gap, cores or os.cpu_count() or 1)
    print(
        f"\n{name}: {network.num_nodes} nodes, {len(network.tail)} links, "
        f"{len(network.zone_nodes)} zones, {od.sum():,.0f} veh/h, rel gap {rel_gap:g}"
    )
    print(
        f"  simcity bfw     {ours.seconds:8.3f} s  {ours.iterations:4d} it  "
        f"gap {ours.rel_gap:.2e}  (cores {cores or 'all'})"
    )
    record: dict[str, Any] = {
        "network": name,
        "nodes": network.num_nodes,
        "links": len(network.tail),
        "zones": len(network.zone_nodes),
        "demand_veh_h": float(od.sum()),
        "rel_gap_target": rel_gap,
        "load_avg_1min_before": load_before,
        "simcity": ours._asdict(),
        "aequilibrae": None,
    }
    theirs = run_aequilibrae(network, od, rel_gap, cores)
    if theirs is None:
        print("  aequilibrae     not installed (pip install -e '.[bench]')")
        return record
    print(
        f"  aequilibrae bfw {theirs.seconds:8.3f} s  {theirs.iterations:4d} it  "
        f"gap {theirs.rel_gap:.2e}  ({theirs.note}, cores {cores or 'all'})"
    )
    print(f"  ratio ours/theirs {ours.seconds / theirs.seconds:.3g}")
    record["aequilibrae"] = theirs._asdict()
    record["ratio_ours_over_theirs"] = ours.seconds / theirs.seconds
    return record


def sioux_falls() -> tuple[Callable[[], Network], np.ndarray]:
    """The Sioux Falls network (read from its files) and trips of the shared reference data."""
    city = read_tntp(SIOUX_FALLS)
    assert city.od_veh_h is not None
    return lambda: read_tntp(SIOUX_FALLS).network, np.asarray(city.od_veh_h)


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


BUNDLED_CITIES = ("metro", "helsinki", "coquimbo")  # a large generated city, two real ones
NETWORKS = ("sioux-falls", "grid", *BUNDLED_CITIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rel-gap", type=float, default=1e-4)
    parser.add_argument("--cores", type=int, default=None, help="both solvers' cores (default all)")
    parser.add_argument(
        "--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS), help="what to time"
    )
    parser.add_argument("--days", nargs="*", default=None, help="Scenarios to simulate a day of")
    parser.add_argument("--no-days", action="store_true", help="Simulate no days")
    parser.add_argument("--out", type=Path, default=None, help="Also write the figures as JSON")
    args = parser.parse_args()
    networks = []
    for name in args.networks:
        if name == "sioux-falls":
            if SIOUX_FALLS.is_dir():
                networks.append(
                    bench_network("Sioux Falls", *sioux_falls(), args.rel_gap, args.cores)
                )
            else:
                print(f"Sioux Falls skipped: no {SIOUX_FALLS}")
        elif name == "grid":
            _, od = synthetic_grid()
            grid = lambda: synthetic_grid()[0]  # noqa: E731 (its demand made and dropped too)
            networks.append(bench_network("Grid 45x45", grid, od, args.rel_gap, args.cores))
        else:
            build, od = bundled_city(name)
            networks.append(bench_network(f"{name} (bundled)", build, od, args.rel_gap, args.cores))
    days = []
    if not args.no_days:
        print()
        days = simulated_days(args.days)
    if args.out is not None:
        doc = {
            "command": " ".join(["python", *sys.argv]),
            "commit": git_commit(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "aequilibrae": aequilibrae_version(),
            "cores": args.cores,
            "networks": networks,
            "days": days,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.out}")


def git_commit() -> str:
    """HEAD's commit, ``-dirty`` when tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "HEAD") + "-dirty" * bool(dirty)


def aequilibrae_version() -> str | None:
    """The installed AequilibraE's version, None without it."""
    from importlib import metadata

    try:
        return metadata.version("aequilibrae")
    except metadata.PackageNotFoundError:
        return None


def bundled_city(name: str) -> tuple[Callable[[], Network], np.ndarray]:
    """A bundled city's network (built from its scenario: generated, or read from its city
    folder by `simcity.city.netcsv`) and its peak-hour (08:00) demand."""
    scenario = load_scenario(name)
    world = World(scenario)
    return lambda: build_city(scenario, file=name).network, world.od_now(8.0)


def simulated_days(names: list[str] | None) -> list[dict[str, Any]]:
    """One simulated day's wall time (world only, no policy) for each bundled scenario."""
    print("One simulated day per bundled scenario (traffic, energy, monitoring; no policy):")
    print(
        f"{'scenario':<20} {'nodes':>6} {'links':>6} {'steps':>5} {'wall s':>8} {'iters/step':>10}"
    )
    days = []
    for name in names or list(bundled_scenarios()):
        started = time.perf_counter()
        world = World(load_scenario(name))
        records = world.run()
        wall_s = time.perf_counter() - started
        iterations = float(np.mean([r.assignment_iterations for r in records]))
        print(
            f"{name:<20} {world.city.num_nodes:>6} {world.city.num_links:>6} "
            f"{len(records):>5} {wall_s:>8.2f} {iterations:>10.1f}"
        )
        days.append({"scenario": name, "steps": len(records), "wall_s": wall_s})
    return days


if __name__ == "__main__":
    main()
