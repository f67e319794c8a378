"""Shortest-path trees and all-or-nothing loading, compiled and split over threads.

M nodes (N plus one origin copy per node that trips may not pass through), L links,
O origins (zones with demand), Z zones.

One compiled pass per origin: Dijkstra with a binary heap over the links in CSR order,
stopped once every destination with demand is settled, then the demand walked back up
the tree in reverse settle order (a topological order of the tree, whatever the link
times), each node handing its subtree's demand to the link from its predecessor. That is
O(L log M) per origin with no (origins x nodes) arrays. The kernel releases the GIL, so
``workers`` threads search disjoint chunks of origins at once; demand is loaded in
integer units, so the sum over chunks is exact and the same for any number of workers.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numba
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from simcity.errors import SimcityError

if TYPE_CHECKING:
    from simcity.city.network import Network

# Demand is loaded in integer units: the total of one load is below 2**_TOTAL_BITS units,
# so no sum of them overflows int64.
_TOTAL_BITS = 61
# Origins per worker thread below which splitting the searches is not worth a thread.
_MIN_ORIGINS_PER_WORKER = 8


class PathLoader:
    """Shortest-path trees from every origin, and all-or-nothing loading along them.

    Built for one network's links and one set of origins (the OD rows with demand in
    ``od_veh_h``); only link weights and demand change between loads, so one loader can
    serve many `simcity.traffic.assignment.assign` calls (see `fits`). Its results never depend on
    the loads it did before. A node that trips may not pass through is split: an origin
    copy (index N + k) takes its outgoing links and the node keeps its incoming ones, so a
    path can end there but never continue.

    With ``workers`` > 1 the origins are split over that many threads: the same flows, in
    about 1/workers of the time on as many cores.
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

        # The search numbers nodes by reverse Cuthill-McKee, so that neighbours sit close in
        # memory: a quarter less time on a 30,000-node city than in generator order.
        symmetric = sp.csr_matrix((np.ones(tail.size), (tail_ext, head)), shape=(m, m))
        symmetric = (symmetric + symmetric.T).tocsr()
        order = reverse_cuthill_mckee(symmetric, symmetric_mode=True)  # (M,) new -> old
        self._renumber = np.empty(m, dtype=np.int64)  # (M,) old -> new
        self._renumber[order] = np.arange(m)
        tail_new, head_new = self._renumber[tail_ext], self._renumber[head]  # (L,)
        self.csr_links = np.lexsort((head_new, tail_new)).astype(np.int32)  # (L,) -> link
        self.indptr = np.zeros(m + 1, dtype=np.int64)  # (M + 1,)
        np.cumsum(np.bincount(tail_new, minlength=m), out=self.indptr[1:])
        self.csr_tails = tail_new[self.csr_links].astype(np.int32)  # (L,)
        self.csr_heads = head_new[self.csr_links].astype(np.int32)  # (L,)
        self.dest_nodes = self._renumber[self._zones]  # (Z,) search node of each zone

        self.origin_zones = _origins(od_veh_h)  # (O,) OD rows with demand
        self._others = np.setdiff1d(np.arange(self._zones.size), self.origin_zones)  # (Z - O,)
        self.origin_nodes = self._renumber[carrier[self._zones[self.origin_zones]]]  # (O,)

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
        rows = np.ascontiguousarray(od_veh_h[self.origin_zones])  # (O, Z)
        total = float(rows.sum())
        if not total > 0.0:
            return np.zeros(self.num_links)
        scale = math.ldexp(1.0, _TOTAL_BITS - max(math.frexp(total)[1], -900))
        units = np.rint(rows * scale).astype(np.int64)  # (O, Z) demand in integer units
        weights = np.ascontiguousarray(times_min[self.csr_links], dtype=np.float64)  # (L,)
        needed = rows > 0  # (O, Z)
        reached = np.zeros(rows.shape, dtype=np.bool_)  # (O, Z)

        def run(chunk: slice) -> np.ndarray:
            flows = np.zeros(self.num_links, dtype=np.int64)
            _load_trees(
                self.indptr,
                self.csr_tails,
                self.csr_heads,
                self.csr_links,
                weights,
                self.origin_nodes[chunk],
                self.dest_nodes,
                units[chunk],
                needed[chunk],
                flows,
                reached[chunk],
            )
            return flows

        num_chunks = max(1, min(self.workers, rows.shape[0] // _MIN_ORIGINS_PER_WORKER))
        bounds = np.linspace(0, rows.shape[0], num_chunks + 1).astype(int)
        chunks = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        if num_chunks == 1:
            flows = run(chunks[0])
        else:
            parts = list(_threads(num_chunks).map(run, chunks))
            flows = np.sum(parts, axis=0)
        self._check_reachable(needed & ~reached)
        return flows / scale

    def _check_reachable(self, missing: np.ndarray) -> None:
        if missing.any():
            row, dest = np.argwhere(missing)[0]
            origin = int(self.origin_zones[row])
            raise SimcityError(
                f"no path from zone {origin} (node {self._zones[origin]}) to zone {dest} "
                f"(node {self._zones[dest]})",
                field="od",
                expected="a path from every origin to every destination with demand",
            )


_THREADS: dict[int, ThreadPoolExecutor] = {}
# A forked child (an AsyncVectorEnv worker) has none of its parent's threads: it starts its own.
os.register_at_fork(after_in_child=_THREADS.clear)


def _threads(count: int) -> ThreadPoolExecutor:
    """A pool of ``count`` threads shared by all loaders (started once, not per load)."""
    if count not in _THREADS:
        _THREADS[count] = ThreadPoolExecutor(count, thread_name_prefix="simcity-paths")
    return _THREADS[count]


def _origins(od_veh_h: np.ndarray) -> np.ndarray:
    """OD rows (O,) with demand."""
    return np.flatnonzero(od_veh_h.sum(axis=1) > 0)


@numba.njit(nogil=True, cache=True)
def _load_trees(
    indptr: np.ndarray,
    csr_tails: np.ndarray,
    csr_heads: np.ndarray,
    csr_links: np.ndarray,
    weights: np.ndarray,
    origins: np.ndarray,
    dest_nodes: np.ndarray,
    units: np.ndarray,
    needed: np.ndarray,
    flows: np.ndarray,
    reached: np.ndarray,
) -> None:
    """Add the all-or-nothing load of ``units`` (B, Z) from ``origins`` (B,) to ``flows`` (L,).

    CSR position p runs from ``csr_tails[p]`` (u, with ``indptr[u] <= p < indptr[u + 1]``)
    to ``csr_heads[p]``, is link ``csr_links[p]`` and weighs ``weights[p]``. ``reached``
    (B, Z) is set where a destination was settled. The heap is ordered by (distance,
    node), so ties break the same way on every run.
    """
    m = indptr.size - 1
    dist = np.full(m, np.inf)
    pred_pos = np.full(m, -1, dtype=np.int64)  # CSR position of the tree link into a node
    done = np.zeros(m, dtype=np.bool_)
    order = np.empty(m, dtype=np.int64)  # settle order
    carried = np.zeros(m, dtype=np.int64)  # demand units through each node
    heap_dist = np.empty(csr_heads.size + 1)
    heap_node = np.empty(csr_heads.size + 1, dtype=np.int32)
    wanted = np.zeros(m, dtype=np.int64)  # destinations with demand still to settle, per node
    for b in range(origins.size):
        origin = origins[b]
        remaining = 0
        for z in range(dest_nodes.size):
            if needed[b, z]:
                if wanted[dest_nodes[z]] == 0:
                    remaining += 1
                wanted[dest_nodes[z]] += 1
        # Dijkstra from the origin until every destination with demand is settled.
        dist[origin] = 0.0
        heap_dist[0], heap_node[0] = 0.0, origin
        size, count = 1, 0
        while size > 0 and remaining > 0:
            d, u = heap_dist[0], heap_node[0]
            size -= 1
            _sift_down(heap_dist, heap_node, size, heap_dist[size], heap_node[size])
            if done[u]:
                continue
            done[u] = True
            order[count] = u
            count += 1
            if wanted[u] > 0:
                wanted[u] = 0
                remaining -= 1
            for p in range(indptr[u], indptr[u + 1]):
                v = csr_heads[p]
                nd = d + weights[p]
                if nd < dist[v] and not done[v]:
                    dist[v] = nd
                    pred_pos[v] = p
                    _sift_up(heap_dist, heap_node, size, nd, v)
                    size += 1
        # Walk the demand back up the tree, leaves first.
        for z in range(dest_nodes.size):
            node = dest_nodes[z]
            if done[node]:
                reached[b, z] = True
                if node != origin:
                    carried[node] += units[b, z]
        for k in range(count - 1, 0, -1):
            u = order[k]
            if carried[u] != 0:
                p = pred_pos[u]
                flows[csr_links[p]] += carried[u]
                carried[csr_tails[p]] += carried[u]
                carried[u] = 0
        # Reset what this origin touched, for the next.
        carried[origin] = 0
        for k in range(count):
            u = order[k]
            done[u] = False
            for p in range(indptr[u], indptr[u + 1]):
                dist[csr_heads[p]] = np.inf
        dist[origin] = np.inf
        for z in range(dest_nodes.size):
            wanted[dest_nodes[z]] = 0


@numba.njit(nogil=True, cache=True, inline="always")
def _sift_up(heap_dist: np.ndarray, heap_node: np.ndarray, size: int, d: float, node: int) -> None:
    """Insert (d, node) into the heap of ``size`` entries."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        pd, pn = heap_dist[parent], heap_node[parent]
        if pd < d or (pd == d and pn < node):
            break
        heap_dist[i], heap_node[i] = pd, pn
        i = parent
    heap_dist[i], heap_node[i] = d, node


@numba.njit(nogil=True, cache=True, inline="always")
def _sift_down(
    heap_dist: np.ndarray, heap_node: np.ndarray, size: int, d: float, node: int
) -> None:
    """Put (d, node) at the root of the heap of ``size`` entries and sift it down."""
    if size == 0:
        return
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        cd, cn = heap_dist[child], heap_node[child]
        if child + 1 < size:
            rd, rn = heap_dist[child + 1], heap_node[child + 1]
            if rd < cd or (rd == cd and rn < cn):
                child, cd, cn = child + 1, rd, rn
        if d < cd or (d == cd and node < cn):
            break
        heap_dist[i], heap_node[i] = cd, cn
        i = child
    heap_dist[i], heap_node[i] = d, node
