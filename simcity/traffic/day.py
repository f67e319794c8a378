"""A city's day of traffic equilibria, and the traffic step of the world's intervals.

Z zones, L links. `TrafficDay` memoises a city's equilibria so episodes after the first
reuse them; `step_traffic` is the pure step of the traffic state from one interval to
the next. The arrays it returns (and the day keeps) are read-only: they are shared.
"""

from __future__ import annotations

import math
import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple
from weakref import WeakKeyDictionary

import numpy as np

from simcity.arrays import read_only
from simcity.city.graph import City
from simcity.city.network import Network
from simcity.config.scenario import Scenario, TrafficConfig
from simcity.errors import SimcityError
from simcity.safe_io import excerpt
from simcity.traffic.assignment import Assignment, assign, bpr_time

if TYPE_CHECKING:
    from simcity.traffic.paths import PathLoader

CUT_CACHE_ENV = "SIMCITY_CUT_CACHE_MB"
"""Environment variable: the byte budget (megabytes, 10^6 bytes) of each `TrafficDay`'s
cache of re-routings around capacity cuts; 0 turns the cache off."""
DEFAULT_CUT_CACHE_MB = 500.0
_ONE_BITS = np.float64(1.0).view(np.int64)


class TrafficDay:
    """The equilibria of one city's day, memoised: a pure function of (step, capacity).

    Without capacity cuts a step's equilibrium is the baseline chain (each step
    warm-started from the previous step's baseline); with cuts it is solved warm-started
    from that step's baseline to the looser incident gap, once the cut links' flows have
    settled too (`assign`'s ``watch_links``: at least one step while they carry flow), or
    to the incident iteration limit (re-routing around a cut, not a new equilibrium of
    the whole day). So results never depend on
    what ran before in the process, and episodes after the first reuse the baseline day.

    Re-routings are cached per (step, cut pattern), least recently used first out, within
    a byte budget (``max_bytes``; default from `CUT_CACHE_ENV`, else
    `DEFAULT_CUT_CACHE_MB`). An entry keeps only the links whose flow or time differs
    from that step's baseline (index and value arrays), and its key only the cut links,
    so a hit rebuilds the very same bits.

    The traffic clock may be coarser than the steps (``solve_every_steps`` s > 1): steps
    are grouped in blocks of s, each block's demand is the mean of its steps' demand, and
    its equilibrium holds through the block.
    """

    def __init__(
        self,
        network: Network,
        cfg: TrafficConfig,
        step_od: Sequence[np.ndarray],
        max_bytes: int | None = None,
    ):
        """``step_od``: each step's (Z, Z) demand at the middle of the step."""
        self.network = network
        self.cfg = cfg
        self._every = self.cfg.solve_every_steps
        self._od = [
            read_only(np.mean(step_od[start : start + self._every], axis=0))
            for start in range(0, len(step_od), self._every)
        ]  # one (Z, Z) demand per block of the traffic clock
        self._baseline: list[Assignment] = []
        self._loader: PathLoader | None = None  # search graph kept between solves
        self._cuts: OrderedDict[tuple[int, bytes, bytes], _CutSolve] = OrderedDict()
        self._max_bytes = cut_cache_bytes() if max_bytes is None else max_bytes
        self._cached_bytes = 0

    @property
    def solve_every_steps(self) -> int:
        """Steps per tick of the traffic clock (routes change only at its ticks)."""
        return self._every

    @property
    def num_cached(self) -> int:
        """Re-routings around cuts held in the cache."""
        return len(self._cuts)

    @property
    def cached_bytes(self) -> int:
        """Bytes the cached re-routings hold (arrays, keys and their Python objects)."""
        return self._cached_bytes

    def od(self, step: int) -> np.ndarray:
        """The (Z, Z) demand the traffic at ``step`` carries (its block's mean)."""
        return self._od[step // self._every]

    def solve(self, step: int, capacity_factor: np.ndarray) -> Assignment:
        """The equilibrium at ``step`` with link capacities scaled by ``capacity_factor``."""
        step //= self._every  # the block of the traffic clock
        while len(self._baseline) <= step:
            k = len(self._baseline)
            self._baseline.append(
                self._assign(k, None, self._baseline[-1].flows_veh_h if k else None, k - 1)
            )
        if np.all(capacity_factor == 1.0):
            return self._baseline[step]
        baseline = self._baseline[step]
        key = _cut_key(step, capacity_factor)
        cached = self._cuts.get(key)
        if cached is not None:
            self._cuts.move_to_end(key)
            return cached.assignment(baseline)
        result = self._assign(step, capacity_factor, baseline.flows_veh_h, step)
        entry = _CutSolve.of(result, baseline)
        size = entry.nbytes + sum(sys.getsizeof(part) for part in key) + _ENTRY_OVERHEAD
        if size <= self._max_bytes:
            self._cuts[key] = entry._replace(size=size)
            self._cached_bytes += size
            while self._cached_bytes > self._max_bytes:
                self._cached_bytes -= self._cuts.popitem(last=False)[1].size
        return result

    def _assign(
        self,
        step: int,
        capacity_factor: np.ndarray | None,
        warm_start: np.ndarray | None,
        warm_step: int,
    ) -> Assignment:
        capacity, cfg = self.network.capacity_veh_h, self.cfg
        cut = capacity_factor is not None
        if self._loader is None:
            from simcity.traffic.paths import PathLoader

            self._loader = PathLoader(self.network, self._od[step], workers=self.cfg.path_workers)
        return _read_only_assignment(
            assign(
                self.network,
                self._od[step],
                capacity_veh_h=capacity * capacity_factor if cut else capacity,
                rel_gap=cfg.incident_rel_gap if cut else cfg.rel_gap,
                max_iterations=cfg.incident_max_iterations if cut else cfg.max_iterations,
                warm_start=warm_start,
                warm_start_od_veh_h=self._od[warm_step] if warm_start is not None else None,
                method=self.cfg.method,
                loader=self._loader,
                # A re-routing stops once the cut links' flows settle, not on the
                # network-wide gap alone, which one cut link barely raises.
                watch_links=np.flatnonzero(capacity_factor != 1.0) if cut else None,
            )
        )


def cut_cache_bytes() -> int:
    """The cut cache's byte budget: `CUT_CACHE_ENV` megabytes, else `DEFAULT_CUT_CACHE_MB`."""
    text = os.environ.get(CUT_CACHE_ENV)
    if text is None or not text.strip():
        return int(DEFAULT_CUT_CACHE_MB * 1e6)
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not (math.isfinite(megabytes) and 0 <= megabytes <= 1e9):
        raise SimcityError(
            f"is {excerpt(text)}",
            field=CUT_CACHE_ENV,
            expected="megabytes for the traffic cut cache, a number from 0 (off) to 1e9",
        )
    return int(megabytes * 1e6)


def _cut_key(step: int, capacity_factor: np.ndarray) -> tuple[int, bytes, bytes]:
    """A cut pattern's key: the step, and the links whose factor is not exactly 1.0 with
    their factors' bytes (equal keys iff equal factor arrays, bit for bit)."""
    factor = np.ascontiguousarray(capacity_factor, dtype=np.float64)
    cut = np.flatnonzero(factor.view(np.int64) != _ONE_BITS)
    return step, cut.astype(np.int64).tobytes(), factor[cut].tobytes()


class _Delta(NamedTuple):
    """An (L,) array as the links where it differs from a base array, bit for bit."""

    links: np.ndarray | None  # (K,) int32 links that differ; None: ``values`` is whole
    values: np.ndarray  # (K,), or (L,) where most links differ

    @classmethod
    def of(cls, array: np.ndarray, base: np.ndarray) -> _Delta:
        changed = np.flatnonzero(array.view(np.int64) != base.view(np.int64))
        if changed.size * 12 >= array.size * 8:  # index + value cost more than the whole
            return cls(None, array)
        return cls(changed.astype(np.int32), array[changed])

    def apply(self, base: np.ndarray) -> np.ndarray:
        if self.links is None:
            return self.values
        array = base.copy()
        array[self.links] = self.values
        return read_only(array)

    @property
    def nbytes(self) -> int:
        parts = (self.values,) if self.links is None else (self.links, self.values)
        return sum(part.nbytes + _ARRAY_HEADER for part in parts)


class _CutSolve(NamedTuple):
    """A cached re-routing: flows and times as deltas from the step's baseline."""

    flows: _Delta
    times: _Delta
    rel_gap: float
    num_iterations: int
    tstt_veh_min: float
    converged: bool
    size: int = 0  # bytes charged to the cache's budget

    @classmethod
    def of(cls, result: Assignment, baseline: Assignment) -> _CutSolve:
        return cls(
            _Delta.of(result.flows_veh_h, baseline.flows_veh_h),
            _Delta.of(result.times_min, baseline.times_min),
            result.rel_gap,
            result.num_iterations,
            result.tstt_veh_min,
            result.converged,
        )

    def assignment(self, baseline: Assignment) -> Assignment:
        return Assignment(
            self.flows.apply(baseline.flows_veh_h),
            self.times.apply(baseline.times_min),
            self.rel_gap,
            self.num_iterations,
            self.tstt_veh_min,
            self.converged,
        )

    @property
    def nbytes(self) -> int:
        return self.flows.nbytes + self.times.nbytes


_ARRAY_HEADER = sys.getsizeof(np.empty(0))
"""Bytes of a NumPy array object besides its data."""
_ENTRY_OVERHEAD = 640
"""Bytes of an entry's Python objects besides its arrays and key parts (tuples, the
ordered dict's slot and links), an over-estimate measured on CPython 3.11."""

_DAYS: WeakKeyDictionary[City, dict[tuple[object, ...], TrafficDay]] = WeakKeyDictionary()


def traffic_day(
    city: City, scenario: Scenario, step_od: Callable[[], Sequence[np.ndarray]]
) -> TrafficDay:
    """The shared `TrafficDay` of a city and a scenario's traffic settings.

    ``step_od`` makes each step's demand; it is called only when the day is not yet known.
    """
    key = (scenario.traffic, scenario.events, scenario.time)
    days = _DAYS.setdefault(city, {})
    if key not in days:
        days[key] = TrafficDay(city.network, scenario.traffic, step_od())
    return days[key]


class TrafficSnapshot(NamedTuple):
    """The traffic of one interval."""

    od_veh_h: np.ndarray  # (Z, Z)
    assignment: Assignment
    capacity_veh_h: np.ndarray  # (L,) after any cuts
    reference: Assignment
    """The same interval without accidents: the equilibrium under the external cuts alone
    (``assignment`` itself when no accident cut or re-routing is in force)."""
    cut_links: np.ndarray  # (K,) links open accidents cut in the interval
    expected: Assignment | None = None
    """What the operator's model predicts: the routed flows at the travel times of the
    cuts it knows (None: ``assignment`` itself, no undetected accident slows a link)."""
    expected_capacity_veh_h: np.ndarray | None = None  # (L,) the known cuts' capacities


class TrafficState(NamedTuple):
    """The traffic between intervals: the last interval's, and the cuts routes know."""

    routed_factor: np.ndarray  # (L,) capacity factor the routes were last solved under
    flows_veh_h: np.ndarray  # (L,)
    times_min: np.ndarray  # (L,) at those flows, under the cuts in force
    snapshot: TrafficSnapshot | None  # the last interval's; None before the first


class TrafficInputs(NamedTuple):
    """What the traffic of an interval depends on besides the city's day."""

    step: int
    capacity_factor: np.ndarray  # (L,) external cuts
    cut_factor: np.ndarray  # (L,) capacity left by open accidents
    known_cut_factor: np.ndarray  # (L,) the same, detected accidents only


def initial_traffic(network: Network) -> TrafficState:
    """Empty roads at free flow, before the first interval."""
    num_links = len(network.capacity_veh_h)
    return TrafficState(
        read_only(np.ones(num_links)),
        read_only(np.zeros(num_links)),
        read_only(np.array(network.free_flow_time_min)),
        None,
    )


def step_traffic(state: TrafficState, inputs: TrafficInputs, day: TrafficDay) -> TrafficState:
    """The equilibrium traffic of an interval, after the capacity cuts now in force.

    Drivers re-route around an accident only once it is detected (and announced): the
    equilibrium is solved with the known cuts; undetected ones only slow their links. On a
    traffic clock coarser than the steps (``solve_every_steps``) routes change only at its
    ticks, with the cuts known then; cuts found in between slow their links until the next.
    """
    network = day.network
    actual = inputs.capacity_factor * inputs.cut_factor
    routed = state.routed_factor
    if inputs.step % day.solve_every_steps == 0:
        routed = read_only(inputs.capacity_factor * inputs.known_cut_factor)
    result = day.solve(inputs.step, routed)
    expected, expected_capacity = None, None
    if not np.array_equal(routed, actual):
        expected, expected_capacity = result, read_only(network.capacity_veh_h * routed)
        times = bpr_time(
            result.flows_veh_h,
            network.free_flow_time_min,
            network.capacity_veh_h * actual,
            network.bpr_b,
            network.bpr_power,
        )
        result = result._replace(
            times_min=read_only(times), tstt_veh_min=float(result.flows_veh_h @ times)
        )
    capacity = read_only(network.capacity_veh_h * actual)
    external = inputs.capacity_factor
    clear = np.array_equal(routed, external) and np.array_equal(actual, external)
    reference = result if clear else day.solve(inputs.step, external)
    cut_links = read_only(np.flatnonzero(inputs.cut_factor != 1.0))
    snapshot = TrafficSnapshot(
        day.od(inputs.step), result, capacity, reference, cut_links, expected, expected_capacity
    )
    return TrafficState(routed, result.flows_veh_h, result.times_min, snapshot)


def _read_only_assignment(result: Assignment) -> Assignment:
    read_only(result.flows_veh_h)
    read_only(result.times_min)
    return result
