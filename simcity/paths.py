"""Shortest-path trees and all-or-nothing loading, vectorised across origins.

M nodes (N plus one origin copy per node that trips may not pass through), O origins
(zones with demand), B origins per block of trees. One SciPy Dijkstra call per block,
then a loading pass that walks every tree from its leaves to its root in a topological
order, one NumPy step per rank for all origins of the block. Trees' orders and links are
kept between calls and only patched where they change.
"""

from __future__ import annotations

import atexit
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from simcity.errors import SimcityError

if TYPE_CHECKING:
    from simcity.traffic import Network

# Link times in the path search are floored at this, so every tree link climbs strictly in
# distance from the origin and distance order is a topological order of each tree, even
# over zero free-flow-time links (centroid connectors).
_MIN_SEARCH_TIME_MIN = 1e-6
# Origins per shortest-path call are capped so that one block's (origins x nodes) arrays
# stay near this many cells.
_BLOCK_CELLS = 1 << 22
# Trees are kept between loads (so most loads only patch them) while all blocks together
# hold at most this many cells, 20 bytes each; beyond it they are rebuilt every load.
_KEEP_CELLS = 1 << 24
# Demand is loaded in integer units: the total of one load is below 2**_TOTAL_BITS units,
# so no sum overflows int64, and link sums over at most 2**22 cells split into 30-bit
# halves stay exact in float64 (bincount).
_TOTAL_BITS = 61
_LOW_BITS = 30
# Searches are split over worker processes only when each gets at least this many origins.
_MIN_ORIGINS_PER_WORKER = 16


class PathLoader:
    """Shortest-path trees from every origin, and all-or-nothing loading along them.

    Built for one network's links and one set of origins (the OD rows with demand in
    ``od_veh_h``); only link weights and demand change between loads, so one loader can
    serve many `simcity.traffic.assign` calls (see `fits`). Its results never depend on
    the loads it did before. A node that trips may not pass through is split: an origin
    copy (index N + k) takes its outgoing links and the node keeps its incoming ones, so a
    path can end there but never continue.

    With ``workers`` > 1 each block's searches are split over that many processes (this
    one and ``workers - 1`` forked helpers kept for the process's life): the same trees,
    in about 1/workers of the time on as many cores. Inside a daemonic process (a
    Gymnasium `AsyncVectorEnv` worker), which may not start processes, it searches alone.
    """

    def __init__(self, network: Network, od_veh_h: np.ndarray, *, workers: int = 1) -> None:
        if workers < 1:
            raise SimcityError(
                f"path loader needs at least one worker (got {workers})",
                field="workers",
                expected="an integer >= 1",
            )
        self.workers = workers
        n = network.num_nodes
        tail = np.asarray(network.tail, dtype=np.int64)  # (L,)
        head = np.asarray(network.head, dtype=np.int64)  # (L,)
        split = np.flatnonzero(~np.asarray(network.through, dtype=bool))
        carrier = np.arange(n, dtype=np.int64)  # (N,) node carrying each node's out-links
        carrier[split] = n + np.arange(split.size)
        m = n + split.size
        tail_ext = carrier[tail]  # (L,)
        self.num_links = tail.size
        self.num_nodes = m
        self.network = network
        # Copies of the structure the loader was built for (`fits`).
        self._structure = (n, tail, head, np.array(network.through, dtype=bool))
        self._zones = np.array(network.zone_nodes, dtype=np.int64)

        by_tail = np.lexsort((head, tail_ext))  # (L,) CSR position -> link
        indptr = np.zeros(m + 1, dtype=np.int32)
        np.cumsum(np.bincount(tail_ext, minlength=m), out=indptr[1:])
        self.csr_links = by_tail
        self.graph = sp.csr_matrix(
            (np.ones(tail.size), head[by_tail].astype(np.int32), indptr), shape=(m, m)
        )

        # Incoming links of each node, grouped by node; slot k holds the k-th incoming
        # link of every node that has more than k.
        self.in_links = np.lexsort((tail_ext, head))  # (L,)
        self.in_tails = tail_ext[self.in_links]  # (L,)
        self.in_degree = np.bincount(head, minlength=m + 1)  # (M + 1,); node M: "none"
        self.in_start = np.concatenate([[0], np.cumsum(self.in_degree)[:-1]])  # (M + 1,)
        self.slots = []
        for k in range(int(self.in_degree.max(initial=0))):
            nodes = np.flatnonzero(self.in_degree > k)
            links = self.in_links[self.in_start[nodes] + k]
            self.slots.append((nodes, links, tail_ext[links]))

        zones = self._zones  # (Z,)
        self.origin_zones = _origins(od_veh_h)  # (O,) OD rows with demand
        self._others = np.setdiff1d(np.arange(zones.size), self.origin_zones)  # (Z - O,)
        self.keep_trees = self.origin_zones.size * m <= _KEEP_CELLS
        num_blocks = max(1, -(-self.origin_zones.size * m // _BLOCK_CELLS))
        self.blocks = [
            _Block(rows, carrier[zones[rows]], zones)
            for rows in np.array_split(self.origin_zones, num_blocks)
        ]

    def fits(self, network: Network, od_veh_h: np.ndarray) -> bool:
        """Whether this loader can load ``od_veh_h`` (Z, Z) on ``network``.

        True when the network has the loader's nodes, links, zones and through flags
        (capacities, times and BPR parameters may differ) and the OD rows with demand are
        exactly the loader's origins. False for another origin set. Raises `SimcityError`
        for another network structure.
        """
        n, tail, head, through = self._structure
        if network is not self.network and not (
            network.num_nodes == n
            and np.array_equal(network.tail, tail)
            and np.array_equal(network.head, head)
            and np.array_equal(network.through, through)
            and np.array_equal(network.zone_nodes, self._zones)
        ):
            raise SimcityError(
                "path loader built for another network",
                field="loader",
                expected="a PathLoader built for this network's nodes, links and zones",
            )
        return np.array_equal(_origins(od_veh_h), self.origin_zones)

    def load(self, times_min: np.ndarray, od_veh_h: np.ndarray) -> np.ndarray:
        """All-or-nothing link flows (L,) of ``od_veh_h`` (Z, Z) at link ``times_min`` (L,).

        Only the loader's origins may have demand. The flows are exact sums of the demand
        rounded to a unit of about ``2**-61`` times its total: a pure function of the
        shortest-path trees and the demand.
        """
        if self._others.size and od_veh_h[self._others].any():
            raise SimcityError(
                "demand from an origin the path loader was not built for",
                field="od",
                expected="demand only from the loader's origins",
            )
        rows = od_veh_h[self.origin_zones]  # (O, Z)
        total = float(rows.sum())
        if not total > 0.0:
            return np.zeros(self.num_links)
        scale = math.ldexp(1.0, _TOTAL_BITS - max(math.frexp(total)[1], -900))
        units = np.rint(rows * scale).astype(np.int64)  # (O, Z) demand in integer units
        np.maximum(times_min[self.csr_links], _MIN_SEARCH_TIME_MIN, out=self.graph.data)
        flows = np.zeros(self.num_links + 1, dtype=np.int64)  # (L + 1,) last: "no link"
        start = 0
        for block in self.blocks:
            end = start + block.origins.size
            flows += block.load(self, rows[start:end], units[start:end])
            start = end
        return flows[:-1] / scale

    def tree_links(self, pred: np.ndarray) -> np.ndarray:
        """Link (R, M) from each node's predecessor ``pred`` (R, M) to it; L where none."""
        links = np.full(pred.shape, self.num_links, dtype=np.int32)
        for nodes, slot_links, slot_tails in self.slots:
            links[:, nodes] = np.where(pred[:, nodes] == slot_tails, slot_links, links[:, nodes])
        return links

    def find_links(self, tails: np.ndarray, heads: np.ndarray) -> np.ndarray:
        """Link from ``tails`` to ``heads`` (both (K,)); L where the tail is node M."""
        found = np.full(tails.size, self.num_links, dtype=np.int32)
        todo = np.flatnonzero(tails < self.num_nodes)
        slot = 0
        while todo.size:
            at = self.in_start[heads[todo]] + slot
            hit = self.in_tails[at] == tails[todo]
            found[todo[hit]] = self.in_links[at[hit]]
            todo = todo[~hit]
            slot += 1
            todo = todo[self.in_degree[heads[todo]] > slot]
        return found


def _search(graph: sp.csr_matrix, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist, pred = dijkstra(graph, indices=origins, return_predecessors=True)
    return dist, pred


_POOL: dict[int, ProcessPoolExecutor] = {}


def _helpers(count: int) -> ProcessPoolExecutor | None:
    """This process's pool of ``count`` search helpers; None where it may not have one."""
    if multiprocessing.current_process().daemon:
        return None
    if count not in _POOL:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        _POOL[count] = ProcessPoolExecutor(count, mp_context=context)
    return _POOL[count]


@atexit.register
def _close_helpers() -> None:
    for pool in _POOL.values():
        pool.shutdown(cancel_futures=True)
    _POOL.clear()


def shortest_paths(
    graph: sp.csr_matrix, origins: np.ndarray, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Distances and predecessors (O, M) from ``origins`` (O,), searched by ``workers``.

    SciPy's Dijkstra holds the GIL, so extra workers are processes: the origins are split
    in ``workers`` chunks, this process searches the first while helpers search the rest.
    The result does not depend on ``workers``; a helper pool that broke is replaced, and
    its chunks searched here.
    """
    if workers <= 1 or origins.size < 2 * _MIN_ORIGINS_PER_WORKER:
        return _search(graph, origins)
    chunks = np.array_split(origins, min(workers, origins.size // _MIN_ORIGINS_PER_WORKER))
    pool = _helpers(len(chunks) - 1)
    if pool is None:
        return _search(graph, origins)
    try:
        futures = [pool.submit(_search, graph, chunk) for chunk in chunks[1:]]
    except BrokenProcessPool:
        _POOL.pop(len(chunks) - 1, None)
        return _search(graph, origins)
    parts = [_search(graph, chunks[0])]
    for chunk, future in zip(chunks[1:], futures, strict=True):
        try:
            parts.append(future.result())
        except BrokenProcessPool:
            _POOL.pop(len(chunks) - 1, None)
            parts.append(_search(graph, chunk))
    return np.concatenate([d for d, _ in parts]), np.concatenate([p for _, p in parts])


def _origins(od_veh_h: np.ndarray) -> np.ndarray:
    """OD rows (O,) with demand."""
    return np.flatnonzero(od_veh_h.sum(axis=1) > 0)


class _Block:
    """Shortest-path trees of a block of B origins, kept in rank-major (M, B) layout.

    Rank r of origin o is the r-th node of a topological order of o's tree (distance order
    when the tree was last sorted). Loading walks the ranks backwards, each node handing
    its subtree's demand to its predecessor: one vectorised step per rank for all B
    origins. The order is kept while it stays topological; link times change a little
    between iterations and a new predecessor nearly always still comes first, so most
    loads only patch the few tree links that changed.
    """

    def __init__(
        self,
        origin_zones: np.ndarray,
        origins: np.ndarray,
        zone_nodes: np.ndarray,
    ) -> None:
        self.origin_zones = origin_zones  # (B,) OD rows
        self.origins = origins  # (B,) node of each origin
        self.zone_nodes = zone_nodes  # (Z,)
        self.unreachable: np.ndarray | None = None  # (B, Z) no path; times never change it
        self._forget()

    def _forget(self) -> None:
        empty = np.zeros((0, 0), dtype=np.int32)
        self.pred = empty  # (B, M) predecessor of each node; M for none
        self.rank = empty  # (B, M + 1) rank of each node; column M ("none"): M
        self.parent_slot = empty.astype(np.int64)  # (M, B) flat (M + 1, B) index of the parent
        self.link = empty  # (M, B) tree link into the node at (r, o); L for none
        self.demand_slot = empty.astype(np.int64)  # (B, Z) flat load index of each destination

    def load(self, loader: PathLoader, od_veh_h: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Link flows (L + 1,) in integer units of ``units`` (B, Z): ``od_veh_h`` in them."""
        dist, pred = shortest_paths(loader.graph, self.origins, loader.workers)
        b, m = pred.shape
        if self.unreachable is None:
            self.unreachable = np.isinf(dist[:, self.zone_nodes])
        self._check_reachable(od_veh_h)
        pred[pred < 0] = m
        if self.pred.size == 0:
            stale = np.arange(b)
        else:
            rows, nodes = np.nonzero(pred != self.pred)
            new, ranks = pred[rows, nodes], self.rank[rows, nodes]
            # Still topological unless some new predecessor does not come before its node.
            stale = np.unique(rows[(new != m) & (self.rank[rows, new] >= ranks)])
            if stale.size:
                keep = ~np.isin(rows, stale)
                rows, nodes, new, ranks = rows[keep], nodes[keep], new[keep], ranks[keep]
            self.parent_slot[ranks, rows] = self.rank[rows, new] * b + rows
            self.link[ranks, rows] = loader.find_links(new, nodes)
        self.pred = pred
        if stale.size:
            self._sort(stale, dist[stale], pred[stale], loader)

        # (M + 1, B) flat; row M takes what the roots hand on. Integer sums are exact, so
        # the order of the walk (which depends on the trees' history) does not matter.
        load = np.zeros((m + 1) * b, dtype=np.int64)
        load[self.demand_slot] = units
        parent_slot = self.parent_slot
        for r in range(m - 1, 0, -1):
            load[parent_slot[r]] += load[r * b : (r + 1) * b]
        # Sum per link in two halves that float64 adds exactly.
        cells, links, size = load[: m * b], self.link.ravel(), loader.num_links + 1
        low = np.bincount(links, weights=cells & ((1 << _LOW_BITS) - 1), minlength=size)
        high = np.bincount(links, weights=cells >> _LOW_BITS, minlength=size)
        if not loader.keep_trees:
            self._forget()
        return (high.astype(np.int64) << _LOW_BITS) + low.astype(np.int64)

    def _sort(
        self, rows: np.ndarray, dist: np.ndarray, pred: np.ndarray, loader: PathLoader
    ) -> None:
        """Order the trees of origins ``rows`` by distance (R, M), a topological order."""
        num_rows, m = dist.shape
        b = self.origins.size
        order = np.argsort(dist, axis=1).astype(np.int32)  # (R, M)
        rank = np.full((num_rows, m + 1), m, dtype=np.int32)  # (R, M + 1)
        np.put_along_axis(rank, order, np.arange(m, dtype=np.int32)[None, :], axis=1)
        cell = (order + (np.arange(num_rows, dtype=np.int32) * m)[:, None]).T  # (M, R)
        cell = np.ascontiguousarray(cell)  # flat (R, M) index of the node at each rank
        parent = pred.ravel()[cell]  # (M, R)
        parent_rank = np.ascontiguousarray(np.take_along_axis(rank, parent.T, axis=1).T)
        parent_slot = parent_rank.astype(np.int64) * b + rows  # (M, R)
        link = loader.tree_links(pred).ravel()[cell]  # (M, R)
        demand_slot = rank[:, self.zone_nodes].astype(np.int64) * b + rows[:, None]  # (R, Z)
        if num_rows == b:
            self.rank, self.parent_slot, self.link, self.demand_slot = (
                rank,
                parent_slot,
                link,
                demand_slot,
            )
        else:
            self.rank[rows], self.demand_slot[rows] = rank, demand_slot
            self.parent_slot[:, rows], self.link[:, rows] = parent_slot, link

    def _check_reachable(self, od_veh_h: np.ndarray) -> None:
        assert self.unreachable is not None
        if not self.unreachable.any():
            return
        missing = self.unreachable & (od_veh_h > 0)  # (B, Z)
        if missing.any():
            row, dest = np.argwhere(missing)[0]
            origin = int(self.origin_zones[row])
            raise SimcityError(
                f"no path from zone {origin} (node {self.zone_nodes[origin]}) to zone {dest} "
                f"(node {self.zone_nodes[dest]})",
                field="od",
                expected="a path from every origin to every destination with demand",
            )
