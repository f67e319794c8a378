"""A city's day of traffic equilibria, and the traffic step of the world's intervals.

Z zones, L links. `TrafficDay` memoises a city's equilibria so episodes after the first
reuse them; `step_traffic` is the pure step of the traffic state from one interval to
the next. The arrays it returns (and the day keeps) are read-only: they are shared.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple
from weakref import WeakKeyDictionary

import numpy as np

from simcity.arrays import read_only
from simcity.city.graph import City
from simcity.city.network import Network
from simcity.config.scenario import Scenario, TrafficConfig
from simcity.traffic.assignment import Assignment, assign, bpr_time

if TYPE_CHECKING:
    from simcity.traffic.paths import PathLoader


class TrafficDay:
    """The equilibria of one city's day, memoised: a pure function of (step, capacity).

    Without capacity cuts a step's equilibrium is the baseline chain (each step
    warm-started from the previous step's baseline); with cuts it is solved warm-started
    from that step's baseline to the looser incident gap or iteration limit (re-routing
    around a cut, not a new equilibrium of the whole day). So results never depend on
    what ran before in the process, and episodes after the first reuse the baseline day.

    The traffic clock may be coarser than the steps (``solve_every_steps`` s > 1): steps
    are grouped in blocks of s, each block's demand is the mean of its steps' demand, and
    its equilibrium holds through the block.
    """

    def __init__(
        self,
        network: Network,
        cfg: TrafficConfig,
        step_od: Sequence[np.ndarray],
        max_cached: int = 4096,
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
        self._cuts: OrderedDict[tuple[int, bytes], Assignment] = OrderedDict()
        self._max_cached = max_cached

    @property
    def solve_every_steps(self) -> int:
        """Steps per tick of the traffic clock (routes change only at its ticks)."""
        return self._every

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
        key = (step, capacity_factor.tobytes())
        if key in self._cuts:
            self._cuts.move_to_end(key)
            return self._cuts[key]
        result = self._assign(step, capacity_factor, self._baseline[step].flows_veh_h, step)
        self._cuts[key] = result
        if len(self._cuts) > self._max_cached:
            self._cuts.popitem(last=False)
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
            )
        )


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
    if not np.array_equal(routed, actual):
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
    snapshot = TrafficSnapshot(day.od(inputs.step), result, capacity)
    return TrafficState(routed, result.flows_veh_h, result.times_min, snapshot)


def _read_only_assignment(result: Assignment) -> Assignment:
    read_only(result.flows_veh_h)
    read_only(result.times_min)
    return result
