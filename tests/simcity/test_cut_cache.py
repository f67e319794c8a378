"""The traffic day's cache of re-routings around capacity cuts: deltas, byte budget."""

from __future__ import annotations

import numpy as np
import pytest
from toy_networks import make_network

from simcity.city.network import Network
from simcity.config.scenario import TrafficConfig
from simcity.errors import SimcityError
from simcity.traffic.assignment import Assignment
from simcity.traffic.day import CUT_CACHE_ENV, DEFAULT_CUT_CACHE_MB, TrafficDay, cut_cache_bytes

# A 4 x 4 grid, both ways, zones at the corners: many routes, so cuts re-route.
SIDE = 4


def grid() -> Network:
    links = []
    for r in range(SIDE):
        for c in range(SIDE):
            node = r * SIDE + c
            for dr, dc in ((0, 1), (1, 0)):
                if r + dr < SIDE and c + dc < SIDE:
                    other = (r + dr) * SIDE + c + dc
                    t0 = 1.0 + 0.1 * ((node + other) % 3)
                    links += [(node, other, t0, 600.0), (other, node, t0, 600.0)]
    return make_network(links, [0, SIDE - 1, SIDE * (SIDE - 1), SIDE * SIDE - 1])


NETWORK = grid()
NUM_LINKS = len(NETWORK.tail)
OD = np.full((4, 4), 400.0) - np.diag(np.full(4, 400.0))
# A tight incident gap, so a cut is solved with several iterations (most links move).
CFG = TrafficConfig(incident_rel_gap=1e-9, incident_max_iterations=6)


def day(max_bytes: int | None = None) -> TrafficDay:
    return TrafficDay(NETWORK, CFG, [OD, 1.2 * OD, 0.8 * OD], max_bytes=max_bytes)


def cut(*links: int, factor: float = 0.1) -> np.ndarray:
    capacity_factor = np.ones(NUM_LINKS)
    capacity_factor[list(links)] = factor
    return capacity_factor


def same_bits(a: Assignment, b: Assignment) -> None:
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
        else:
            assert x == y


PATTERNS = [cut(0), cut(0, 5), cut(3, factor=0.5), cut(7, 9, 11), cut(0, factor=0.999999)]


def test_cached_re_routings_are_the_uncached_bits() -> None:
    fresh, cached = day(max_bytes=0), day()
    for step in range(3):
        for pattern in PATTERNS:
            first = cached.solve(step, pattern)
            same_bits(first, fresh.solve(step, pattern))
            same_bits(cached.solve(step, pattern), first)  # a hit rebuilds the same bits
            assert not cached.solve(step, pattern).flows_veh_h.flags.writeable
    assert fresh.num_cached == 0 and fresh.cached_bytes == 0
    assert cached.num_cached == 3 * len(PATTERNS)


def test_an_entry_keeps_only_the_links_that_moved() -> None:
    # The default incident gap: a cut of an idle link moves nothing, so nothing is kept.
    traffic = TrafficDay(NETWORK, TrafficConfig(), [OD])
    base = traffic.solve(0, np.ones(NUM_LINKS))
    idle = int(np.flatnonzero(base.flows_veh_h == 0)[0])
    same_bits(traffic.solve(0, cut(idle)), base._replace(num_iterations=1))
    (entry,) = traffic._cuts.values()
    assert entry.flows.links is not None and entry.flows.links.size == 0
    assert entry.times.links is not None and entry.times.links.size == 0
    # A re-routing that moves most links keeps whole arrays, and costs more.
    moved = day()
    moved.solve(0, PATTERNS[0])
    (dense,) = moved._cuts.values()
    assert dense.flows.links is None and dense.times.links is None
    assert traffic.cached_bytes + NUM_LINKS * 8 < moved.cached_bytes


def test_the_budget_evicts_the_least_recently_used() -> None:
    probe = day()
    probe.solve(0, PATTERNS[0])
    one = probe.cached_bytes
    traffic = day(max_bytes=int(2.5 * one))
    traffic.solve(0, PATTERNS[0])
    traffic.solve(0, PATTERNS[1])
    traffic.solve(0, PATTERNS[0])  # PATTERNS[0] is now the most recent
    traffic.solve(0, PATTERNS[3])
    assert traffic.cached_bytes <= int(2.5 * one)
    keys = list(traffic._cuts)
    assert len(keys) <= 2 and keys[-1][0] == 0
    # Evicted or not, every answer is the same bits.
    fresh = day(max_bytes=0)
    for pattern in PATTERNS:
        same_bits(traffic.solve(1, pattern), fresh.solve(1, pattern))
    assert traffic.cached_bytes <= int(2.5 * one)


def test_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CUT_CACHE_ENV, raising=False)
    assert cut_cache_bytes() == int(DEFAULT_CUT_CACHE_MB * 1e6) <= 500_000_000
    monkeypatch.setenv(CUT_CACHE_ENV, "64")
    assert cut_cache_bytes() == 64_000_000
    monkeypatch.setenv(CUT_CACHE_ENV, "0")
    traffic = day()
    traffic.solve(0, PATTERNS[0])
    assert traffic.num_cached == 0
    for bad in ("lots", "-1", "nan", "inf", "1e12"):
        monkeypatch.setenv(CUT_CACHE_ENV, bad)
        with pytest.raises(SimcityError, match=CUT_CACHE_ENV):
            cut_cache_bytes()
