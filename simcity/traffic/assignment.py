"""Road traffic: BPR link times and static user-equilibrium assignment.

Pure functions over NumPy arrays. L links, N nodes, Z zones.

`assign` is a Frank–Wolfe method (bi-conjugate by default) with an exact line search on
the Beckmann objective. Its cost is the all-or-nothing loads (`simcity.traffic.paths`): per
origin, one compiled Dijkstra search stopped at the last destination with demand and a
walk of the demand back up its tree, O(L log N), split over threads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from simcity.city.network import Network
from simcity.errors import SimcityError
from simcity.traffic.frank_wolfe import BprLinks, Directions, line_search

if TYPE_CHECKING:
    from simcity.traffic.paths import PathLoader


class Assignment(NamedTuple):
    """Result of `assign`."""

    flows_veh_h: np.ndarray  # (L,)
    times_min: np.ndarray  # (L,) BPR times at those flows
    rel_gap: float
    num_iterations: int
    tstt_veh_min: float  # total system travel time: sum(flows * times)
    converged: bool


def bpr_time(
    flows_veh_h: np.ndarray,
    free_flow_time_min: np.ndarray,
    capacity_veh_h: np.ndarray,
    b: np.ndarray | float = 0.15,
    power: np.ndarray | float = 4.0,
) -> np.ndarray:
    """BPR link travel time ``t0 * (1 + b * (v / c) ** power)`` in minutes.

    >>> round(float(bpr_time(np.array([1000.0]), np.array([6.0]), np.array([2000.0]))[0]), 9)
    6.05625
    """
    return free_flow_time_min * (1.0 + b * (flows_veh_h / capacity_veh_h) ** power)


METHODS: tuple[str, ...] = ("fw", "cfw", "bfw")
"""Frank–Wolfe variants `assign` knows: plain, conjugate and bi-conjugate."""


def assign(
    network: Network,
    od_veh_h: np.ndarray,
    *,
    capacity_veh_h: np.ndarray | None = None,
    rel_gap: float = 1e-4,
    max_iterations: int = 500,
    warm_start: np.ndarray | None = None,
    warm_start_od_veh_h: np.ndarray | None = None,
    method: str = "bfw",
    loader: PathLoader | None = None,
    watch_links: np.ndarray | None = None,
) -> Assignment:
    """Static user-equilibrium link flows by Frank–Wolfe (plain, conjugate or bi-conjugate).

    Args:
        network: the road network. A node with `Network.through` False (TNTP zones below
            ``<FIRST THRU NODE>``) may start and end trips but never carries one through:
            it is split into an origin copy with its outgoing links and a sink with its
            incoming ones.
        od_veh_h: (Z, Z) demand between zones in `Network.zone_nodes` order; the
            diagonal is ignored.
        capacity_veh_h: (L,) link capacities to use instead of the network's (incidents).
        rel_gap: stop when ``(sum x t(x) - sum y t(x)) / sum x t(x)`` is at most this,
            with y the all-or-nothing flows at times t(x).
        max_iterations: most all-or-nothing loads (shortest-path passes) to spend, the
            one measuring the final gap included; at least 2.
        warm_start: (L,) link flows of an earlier solution, e.g. the previous step's.
        warm_start_od_veh_h: (Z, Z) the demand those flows carry. With it, the start is
            ``rho * warm_start`` plus the rest of the new demand loaded all-or-nothing at
            the warm-start times, where ``rho`` is the largest factor with
            ``rho * old <= new`` for every OD pair: exactly feasible for the new demand,
            and close to the old equilibrium when demand changed by a few percent.
            Without it the flows only set the times of the first loading: always
            feasible, but it saves little.
        method: "bfw" (bi-conjugate, Mitradjieva & Lindberg 2013), "cfw" (conjugate) or
            "fw" (plain). The conjugate ones fall back to a plain step, and restart, at an
            iteration where it would lower the objective more.
        loader: a `simcity.traffic.paths.PathLoader` built for this network (any capacities) and
            the same OD rows with demand, to keep between calls: it saves rebuilding the
            search graph, and its ``workers`` split the searches. Results are the same bits
            with or without it, whatever it loaded before. With another origin set a new
            loader is used.
        watch_links: (K,) link indices whose flows must settle too, e.g. the links a
            re-solve cuts: besides the gap, stop only once the last step moved their total
            flow by at most ``rel_gap`` times that flow. While they carry flow, at least one
            step is taken, so a warm start whose network-wide gap a cut barely raises
            still re-routes around the cut (``max_iterations`` bounds it as ever).

    Returns:
        The flows and times of the last iterate; ``num_iterations`` counts all-or-nothing
        loads, the unit of cost.

    Two routes of 10 and 12 free-flow minutes share 2,000 veh/h; at equilibrium both take
    the same time:

    >>> net = Network(
    ...     num_nodes=4, tail=np.array([0, 1, 0, 2]), head=np.array([1, 3, 2, 3]),
    ...     capacity_veh_h=np.full(4, 1000.0), free_flow_time_min=np.array([5.0, 5, 6, 6]),
    ...     bpr_b=np.full(4, 0.15), bpr_power=np.full(4, 4.0),
    ...     zone_nodes=np.array([0, 3]), through=np.ones(4, dtype=bool))
    >>> result = assign(net, np.array([[0.0, 2000.0], [0.0, 0.0]]), rel_gap=1e-10)
    >>> np.round(result.flows_veh_h, 1).tolist()
    [1173.2, 1173.2, 826.8, 826.8]
    >>> round(float(result.times_min[0] + result.times_min[1]), 3), bool(result.converged)
    (12.841, True)
    """
    capacity = _check_inputs(network, od_veh_h, capacity_veh_h, rel_gap, max_iterations, method)
    od = _demand(od_veh_h, len(network.zone_nodes), "od")  # (Z, Z)
    bpr = BprLinks(network, capacity)
    if not od.any():
        zero = np.zeros(len(network.tail))
        return Assignment(zero, bpr.time(zero), 0.0, 0, 0.0, True)

    if loader is None or not loader.fits(network, od):
        from simcity.traffic.paths import PathLoader

        loader = PathLoader(network, od, workers=loader.workers if loader else 1)
    flows, num_loads = _initial_flows(loader, bpr, od, warm_start, warm_start_od_veh_h)
    directions = Directions(method)
    watch = None if watch_links is None else _links(watch_links, len(network.tail))
    # The watched links' flow the last step moved; before any step, infinite where they
    # carry flow (a step must tell) and none where they carry none (a cut changes nothing).
    moved = math.inf if watch is not None and flows[watch].any() else 0.0
    while True:
        times = bpr.time(flows)  # (L,)
        aon = loader.load(times, od)  # (L,)
        num_loads += 1
        total = float(flows @ times)
        gap = max(0.0, (total - float(aon @ times)) / total) if total > 0.0 else 0.0
        settled = watch is None or moved <= rel_gap * float(flows[watch].sum())
        if (gap <= rel_gap and settled) or num_loads >= max_iterations:
            break
        target = directions.target(bpr, flows, aon)
        direction = target - flows  # (L,)
        step = line_search(bpr, flows, direction, times)
        if target is not aon:
            # Safeguard: where a plain FW step would lower the objective more than the
            # conjugate one, take it and restart the conjugate sequence.
            fw_direction = aon - flows  # (L,)
            fw_step = line_search(bpr, flows, fw_direction, times)
            fw_flows = flows + fw_step * fw_direction
            if bpr.objective(fw_flows) < bpr.objective(flows + step * direction):
                directions.restart()
                target, direction, step = aon, fw_direction, fw_step
        directions.record(target, step)
        if watch is not None:
            moved = step * float(np.abs(direction[watch]).sum())
        flows += step * direction
    return Assignment(flows, times, gap, num_loads, total, gap <= rel_gap and settled)


def _links(links: np.ndarray, num_links: int) -> np.ndarray:
    """``links`` as an int64 index array after checking every index names a link."""
    index = np.asarray(links)
    if index.ndim != 1 or (index.size and (index.dtype.kind not in "iu")):
        raise SimcityError(
            f"watched links have shape {index.shape}, dtype {index.dtype}",
            field="watch_links",
            expected="(K,) integer link indices",
        )
    if index.size and (index.min() < 0 or index.max() >= num_links):
        raise SimcityError(
            "a watched link does not exist", field="watch_links", expected=f"in [0, {num_links})"
        )
    return index.astype(np.int64)


def all_or_nothing(network: Network, od_veh_h: np.ndarray, times_min: np.ndarray) -> np.ndarray:
    """Link flows (L,) of ``od_veh_h`` (Z, Z) all on shortest paths at link ``times_min``.

    >>> net = Network(
    ...     num_nodes=3, tail=np.array([0, 1, 0]), head=np.array([1, 2, 2]),
    ...     capacity_veh_h=np.ones(3), free_flow_time_min=np.ones(3),
    ...     bpr_b=np.zeros(3), bpr_power=np.ones(3),
    ...     zone_nodes=np.array([0, 2]), through=np.ones(3, dtype=bool))
    >>> all_or_nothing(net, np.array([[0.0, 5.0], [0.0, 0.0]]), np.array([1.0, 1.0, 3.0])).tolist()
    [5.0, 5.0, 0.0]
    """
    _check_inputs(network, od_veh_h, None, 1.0, 2, "fw")
    od = _demand(od_veh_h, len(network.zone_nodes), "od")
    times = np.asarray(times_min, dtype=float)
    if times.shape != (len(network.tail),) or not np.all(np.isfinite(times) & (times >= 0)):
        raise SimcityError(
            "bad link times", field="times_min", expected=f"({len(network.tail)},) values >= 0"
        )
    if not od.any():
        return np.zeros(len(network.tail))
    from simcity.traffic.paths import PathLoader

    return PathLoader(network, od).load(times, od)


def relative_gap(
    network: Network,
    od_veh_h: np.ndarray,
    flows_veh_h: np.ndarray,
    *,
    capacity_veh_h: np.ndarray | None = None,
) -> float:
    """The relative gap `assign` stops on, for any link flows (L,) carrying ``od_veh_h``.

    ``(sum x t(x) - sum y t(x)) / sum x t(x)``, with y the all-or-nothing flows at t(x).
    """
    capacity = _check_inputs(network, od_veh_h, capacity_veh_h, 1.0, 2, "fw")
    flows = np.asarray(flows_veh_h, dtype=float)
    if flows.shape != capacity.shape:
        raise SimcityError(
            f"flows have shape {flows.shape}", field="flows_veh_h", expected=f"{capacity.shape}"
        )
    times = BprLinks(network, capacity).time(flows)
    total = float(flows @ times)
    aon = all_or_nothing(network, od_veh_h, times)
    return (total - float(aon @ times)) / total if total > 0.0 else 0.0


def _initial_flows(
    loader: PathLoader,
    bpr: BprLinks,
    od: np.ndarray,
    warm_start: np.ndarray | None,
    warm_start_od_veh_h: np.ndarray | None,
) -> tuple[np.ndarray, int]:
    """A feasible first solution for ``od`` and the number of loads it took."""
    if warm_start is None:
        if warm_start_od_veh_h is not None:
            raise SimcityError(
                "demand of a warm start given without its flows",
                field="warm_start_od_veh_h",
                expected="warm_start flows with it",
            )
        return loader.load(bpr.time(np.zeros(loader.num_links)), od), 1
    warm = np.asarray(warm_start, dtype=float)
    if warm.shape != (loader.num_links,) or not np.all(np.isfinite(warm)) or (warm < 0).any():
        raise SimcityError(
            f"warm start has shape {warm.shape} or negative/NaN flows",
            field="warm_start",
            expected=f"({loader.num_links},) link flows >= 0",
        )
    if warm_start_od_veh_h is None:
        return loader.load(bpr.time(warm), od), 1
    old = _demand(warm_start_od_veh_h, od.shape[0], "warm_start_od_veh_h")  # (Z, Z)
    carried = old > 0
    rho = float(np.min(od[carried] / old[carried])) if carried.any() else 0.0
    rest = np.maximum(od - rho * old, 0.0)  # (Z, Z) new demand the scaled start lacks
    if not rest.any():
        return rho * warm, 0
    return rho * warm + loader.load(bpr.time(warm), rest), 1


def _demand(od_veh_h: np.ndarray, num_zones: int, field: str) -> np.ndarray:
    """A float copy of an OD matrix with a zero diagonal, after checking it."""
    od = np.array(od_veh_h, dtype=float)
    if od.shape != (num_zones, num_zones):
        raise SimcityError(
            f"OD matrix has shape {od.shape}", field=field, expected=f"({num_zones}, {num_zones})"
        )
    if not np.all(np.isfinite(od)) or (od < 0).any():
        raise SimcityError(
            "OD matrix has negative or NaN demand", field=field, expected=">= 0 veh/h"
        )
    np.fill_diagonal(od, 0.0)
    return od


def _check_inputs(
    network: Network,
    od_veh_h: np.ndarray,
    capacity_veh_h: np.ndarray | None,
    rel_gap: float,
    max_iterations: int,
    method: str,
) -> np.ndarray:
    """Raise `SimcityError` on unusable arguments; return the link capacities to use."""
    if method not in METHODS:
        raise SimcityError(
            f"unknown method {method!r}", field="method", expected=" | ".join(METHODS)
        )
    if not rel_gap > 0 or max_iterations < 2:
        raise SimcityError(
            f"rel_gap={rel_gap}, max_iterations={max_iterations}",
            field="rel_gap/max_iterations",
            expected="rel_gap > 0 and max_iterations >= 2",
        )
    n, num_links = network.num_nodes, len(network.tail)
    tail, head = np.asarray(network.tail), np.asarray(network.head)
    zones = np.asarray(network.zone_nodes)
    if (
        head.shape != (num_links,)
        or np.shape(network.through) != (n,)
        or (num_links and (min(tail.min(), head.min()) < 0 or max(tail.max(), head.max()) >= n))
        or (zones.size and (zones.min() < 0 or zones.max() >= n))
        or np.unique(zones).size != zones.size
    ):
        raise SimcityError(
            "links or zones refer to nodes that do not exist, or zones repeat",
            field="network",
            expected=f"node indices in [0, {n}), distinct zones, (N,) through flags",
        )
    if np.unique(tail.astype(np.int64) * n + head).size != num_links:
        raise SimcityError(
            "two links join the same pair of nodes",
            field="network.links",
            expected="a simple graph",
        )
    link_params = (network.free_flow_time_min, network.bpr_b, network.bpr_power)
    if any(
        np.shape(a) != (num_links,) or not np.all(np.isfinite(a)) or (np.asarray(a) < 0).any()
        for a in link_params
    ):
        raise SimcityError(
            "free-flow times or BPR parameters are missing, negative or NaN",
            field="network",
            expected=f"({num_links},) finite values >= 0",
        )
    if (np.asarray(network.bpr_power) < 1).any():
        raise SimcityError("a BPR power is below 1", field="network.bpr_power", expected=">= 1")
    capacity = np.asarray(
        network.capacity_veh_h if capacity_veh_h is None else capacity_veh_h, dtype=float
    )
    if capacity.shape != (num_links,) or not np.all(np.isfinite(capacity) & (capacity > 0)):
        raise SimcityError(
            "link capacities are not all positive",
            field="capacity_veh_h",
            expected=f"({num_links},) values > 0 veh/h",
        )
    return capacity
