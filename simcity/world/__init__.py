"""The world on SimPy: a city's traffic, electric demand, monitoring and carbon through a day.

SimPy time is minutes since the start of the episode. Each subsystem's state is a frozen
value that a pure function advances by one interval (`simcity.traffic.day.step_traffic`,
`simcity.energy.load.step_energy`, `simcity.monitoring.monitor.step_monitoring`); the
world's one SimPy process calls them once per decision interval, for the interval that
starts now, in the order `World._interval` states. `World.advance` runs the clock to the
end of the next interval and returns what happened in it.

Privileged readers (the clairvoyant reference, the teacher, the day recorder) and the env
read the world through `World.view`, a frozen `WorldView` (`simcity.world.view`) whose
arrays are read-only. Nothing outside the world writes into it but through
`World.intervene`. An interval's numbers are a `StepRecord` (`simcity.world.record`).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import fields, replace
from typing import Any

import numpy as np
import simpy

from simcity.arrays import read_only
from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.compute.bill import ComputeBill, PolicyCompute, bill_compute
from simcity.compute.budget import (
    BudgetState,
    DayBudget,
    budget_left,
    budget_left_share,
    day_budget,
    spend,
)
from simcity.config.scenario import Scenario
from simcity.energy.intensity import carbon_intensity as carbon_intensity
from simcity.energy.load import (
    EnergyInputs,
    feeder_capacity_kw,
    initial_energy,
    step_energy,
)
from simcity.monitoring.incidents import Incidents
from simcity.monitoring.monitor import (
    MonitoringInputs,
    StepOutcome,
    read_only_state,
    start_monitoring,
    step_monitoring,
)
from simcity.monitoring.truth import TrueState, node_quantities, true_state
from simcity.traffic.day import (
    TrafficInputs,
    TrafficSnapshot,
    initial_traffic,
    step_traffic,
    traffic_day,
)
from simcity.traffic.demand import city_demand
from simcity.world.record import StepRecord as StepRecord
from simcity.world.record import interval_record
from simcity.world.tiers import capped, tier_capacity
from simcity.world.view import WorldView as WorldView


class LiveMonitoring:
    """`World.monitoring`: the world's current `MonitoringState`, read on every access.

    For code that holds it across steps; read-only (`World.intervene` changes the world).
    """

    __slots__ = ("_world",)  # nothing else can be assigned: the world is changed by its API

    def __init__(self, world: World) -> None:
        self._world = world

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world.view.monitoring, name)


class World:
    """A city's traffic, electric demand, monitoring and carbon intensity on a SimPy clock.

    ``rng`` (default: from the scenario's seed) draws the episode's sensors, incidents and
    readings; ``policy`` (what a decision costs to run) is billed with every allocation.
    """

    def __init__(
        self,
        scenario: Scenario,
        city: City | None = None,
        *,
        file: str = "<scenario>",
        rng: np.random.Generator | None = None,
        policy: PolicyCompute | None = None,
    ):
        self.scenario = scenario
        self.city = city if city is not None else build_city(scenario, file=file)
        time, n = scenario.time, self.city.num_nodes
        self.dt_min = time.dt_min
        self.num_steps = time.num_steps
        self.policy = PolicyCompute() if policy is None else policy
        self.demand = city_demand(self.city, scenario)
        self._event_nodes = tuple(self.city.nearest_node(e.lon, e.lat) for e in scenario.events)
        midpoints = (np.arange(self.num_steps) + 0.5) * self.dt_min
        self.carbon_g_per_kwh = read_only(carbon_intensity(scenario, midpoints))  # (T,)
        self.datacentre_g_per_kwh = (
            self.carbon_g_per_kwh
            if scenario.datacentre_carbon is None
            else read_only(carbon_intensity(scenario, midpoints, scenario.datacentre_carbon))
        )
        self.feeder_kw = read_only(feeder_capacity_kw(self.city, scenario, self._event_nodes))
        self._monitoring, self._streams = start_monitoring(
            self.city, scenario, rng if rng is not None else np.random.default_rng(scenario.seed)
        )
        self.budget = self._day_budget()
        self._spent = BudgetState()
        start_h = time.start_hour
        self._planned = [((s.at_h - start_h) % 24.0) * 60.0 for s in scenario.incidents.scheduled]
        self._capacity_factor = read_only(np.ones(self.city.num_links))
        self._allocation = read_only(np.zeros(n))
        self._tier_units: np.ndarray | None = None  # (N, T) with analytics tiers
        self._day = traffic_day(
            self.city,
            scenario,
            lambda: [
                self.od_now(self.hour_local((k + 0.5) * self.dt_min)) for k in range(self.num_steps)
            ],
        )
        self._traffic = initial_traffic(self.city.network)
        self._energy = initial_energy(n, scenario.weather.temp_mean_c)
        self._truth: TrueState | None = None
        self._outcome: StepOutcome | None = None
        self.records: list[StepRecord] = []
        self._view: WorldView | None = None
        self.env = simpy.Environment()
        self.env.process(interval_process(self))

    # -- reading ------------------------------------------------------------------

    @property
    def step_index(self) -> int:
        return round(self.env.now / self.dt_min)

    def hour_local(self, minutes: float) -> float:
        """Local hour (0 to 24) at ``minutes`` after the start of the episode."""
        return (self.scenario.time.start_hour + minutes / 60.0) % 24.0

    def od_now(self, hour: float) -> np.ndarray:
        """Zone-to-zone demand (veh/h) at a local hour, events included."""
        return self.demand.od_at_hour(hour)

    @property
    def view(self) -> WorldView:
        """The world now, read-only; the same object until the world changes."""
        if self._view is None:
            self._view = WorldView(
                city=self.city,
                scenario=self.scenario,
                step_index=self.step_index,
                now_min=self.env.now,
                dt_min=self.dt_min,
                num_steps=self.num_steps,
                allocation=self._allocation,
                capacity_factor=self._capacity_factor,
                feeder_kw=self.feeder_kw,
                carbon_g_per_kwh=self.carbon_g_per_kwh,
                datacentre_g_per_kwh=self.datacentre_g_per_kwh,
                traffic=self._traffic,
                energy=self._energy,
                monitoring=self._monitoring,
                truth=self._truth,
                outcome=self._outcome,
                records=tuple(self.records),
                compute_budget_left=budget_left_share(self.budget, self._spent, self.step_index),
            )
        return self._view

    @property
    def monitoring(self) -> LiveMonitoring:
        """The current monitoring state, read live (`LiveMonitoring`)."""
        return LiveMonitoring(self)

    @property
    def traffic(self) -> TrafficSnapshot | None:
        """The last interval's traffic (None before the first)."""
        return self._traffic.snapshot

    @property
    def state(self) -> TrueState | None:
        """The last interval's true per-node quantities and incident rates."""
        return self._truth

    @property
    def outcome(self) -> StepOutcome | None:
        return self._outcome

    @property
    def allocation(self) -> np.ndarray:
        """(N,) monitoring units of the last interval, read-only; with analytics tiers,
        units of capacity (`ComputeConfig.tier_cost`)."""
        return self._allocation

    @property
    def capacity_factor(self) -> np.ndarray:
        """(L,) external capacity cuts, read-only (`intervene` sets them)."""
        return self._capacity_factor

    @property
    def flows_veh_h(self) -> np.ndarray:
        return self._traffic.flows_veh_h

    @property
    def times_min(self) -> np.ndarray:
        return self._traffic.times_min

    @property
    def node_load_kw(self) -> np.ndarray:
        return self._energy.node_load_kw

    def bill(self, step: int, units: float, fleet_on: bool = True) -> ComputeBill:
        """What ``units`` of analytics and the policy's decision cost at ``step``."""
        return bill_compute(
            self.scenario.compute,
            self._monitoring.device,
            self.policy,
            units=units,
            dt_min=self.dt_min,
            intensity_g_per_kwh=float(self.datacentre_g_per_kwh[step]),
            fleet_on=fleet_on,
        )

    def _day_budget(self) -> DayBudget:
        """The episode's compute budgets (`simcity.compute.budget`); the policy's bills
        only if there is a budget (a `SimcityError` if they alone exceed it)."""
        compute, steps = self.scenario.compute, self.num_steps
        capped = (compute.carbon_budget_kg_per_day, compute.energy_budget_kwh_per_day)
        decisions = (
            [self.bill(k, 0.0, fleet_on=False) for k in range(steps)]
            if any(cap is not None for cap in capped)
            else []
        )
        return day_budget(
            compute,
            dt_min=self.dt_min,
            num_steps=steps,
            policy_carbon_g=np.array([b.carbon_g for b in decisions]),
            policy_kwh=decisions[0].facility_energy_kwh if decisions else 0.0,
        )

    # -- changing -----------------------------------------------------------------

    def intervene(
        self,
        *,
        open_incidents: Incidents | None = None,
        anomaly: np.ndarray | None = None,
        capacity_factor: np.ndarray | None = None,
    ) -> None:
        """Change the world from outside between intervals, as an experiment would.

        Replace the open incidents (to inject some), the anomaly evidence (N, Q), or the
        external capacity factor of every link (L,). The only write into the world that
        is not its own step: it takes copies, and never writes into an array it has shown.
        """
        mon = self._monitoring
        if open_incidents is not None:
            copied = {f.name: np.array(getattr(open_incidents, f.name)) for f in fields(Incidents)}
            mon = replace(mon, open=Incidents(**copied))
        if anomaly is not None:
            mon = replace(mon, anomaly=_shaped(anomaly, mon.anomaly.shape, "anomaly"))
        if capacity_factor is not None:
            shape = self._capacity_factor.shape
            self._capacity_factor = _shaped(capacity_factor, shape, "capacity_factor")
        self._monitoring, self._view = read_only_state(mon), None

    def advance(self, allocation: np.ndarray | None = None) -> StepRecord:
        """Simulate the next decision interval under ``allocation`` (N,) and return its record.

        The allocation (monitoring units per node, default none) must already be valid:
        `CityEnv` maps and checks actions. With analytics tiers (``[[compute.tiers]]``) it
        may instead be (N, T): units of each tier per node; the world then counts each
        node's capacity, ``sum_t units_t * tier_cost_t``, as its allocation.
        """
        if self.step_index >= self.num_steps:
            raise RuntimeError("the episode is over")
        units = np.zeros(self.city.num_nodes) if allocation is None else np.array(allocation)
        self._tier_units = None
        if units.ndim == 2:
            cost = self.scenario.compute.tier_cost
            self._tier_units = _shaped(units, (self.city.num_nodes, len(cost)), "allocation")
            units = tier_capacity(units, cost)
        self._allocation, self._view = read_only(units), None
        self.env.run(until=self.env.now + self.dt_min)
        return self.records[-1]

    def run(self) -> list[StepRecord]:
        """Simulate the remaining intervals of the episode."""
        while self.step_index < self.num_steps:
            self.advance()
        return self.records

    def _interval(self) -> None:
        """One interval from now, its stages in their one order: traffic (under the cuts
        monitoring found last interval), energy (its EVs arrive by that traffic), the true
        state of both, monitoring (under the allocation), and the interval's record."""
        step, t0, dt_min = self.step_index, self.env.now, self.dt_min
        t1, hour = t0 + dt_min, self.hour_local(t0 + dt_min / 2)
        mon = self._monitoring
        cuts = TrafficInputs(step, self._capacity_factor, mon.cut_factor, mon.known_cut_factor)
        traffic = step_traffic(self._traffic, cuts, self._day)
        snapshot = traffic.snapshot
        assert snapshot is not None
        arrivals = self.demand.arrivals_veh_h(snapshot.od_veh_h)
        energy = step_energy(
            self._energy,
            EnergyInputs(hour, arrivals, dt_min),
            self.city,
            self.scenario,
            self._event_nodes,
        )
        truth = true_state(
            self.city,
            self.scenario,
            snapshot.assignment.flows_veh_h,
            snapshot.assignment.times_min,
            snapshot.capacity_veh_h,
            energy.node_load_kw,
            self.feeder_kw,
            mon.hotspot,
        )
        truth = TrueState(*map(read_only, truth))
        predicted = None  # the operator's model: routed flows under the cuts it knows
        if snapshot.expected is not None and snapshot.expected_capacity_veh_h is not None:
            predicted = node_quantities(
                self.city,
                self.scenario,
                snapshot.expected.flows_veh_h,
                snapshot.expected.times_min,
                snapshot.expected_capacity_veh_h,
                energy.node_load_kw,
                self.feeder_kw,
            )
        due = tuple((i, t) for i, t in enumerate(self._planned) if t0 <= t < t1)
        intensity = float(self.datacentre_g_per_kwh[step])
        requested = self._allocation
        cap = capped(
            self.budget,
            self._spent,
            step,
            requested,
            self._tier_units,
            self.scenario.compute.tier_cost,
            lambda units, fleet_on: self.bill(step, units, fleet_on),
        )
        if cap.allocation is not requested:
            self._allocation = read_only(cap.allocation)
        if cap.tier_units is not self._tier_units and cap.tier_units is not None:
            self._tier_units = read_only(cap.tier_units)
        monitoring, outcome = step_monitoring(
            mon,
            MonitoringInputs(truth, self._allocation, t0, t1, due, self.policy, intensity)._replace(
                fleet_on=cap.fleet_on, tier_units=self._tier_units, predicted=predicted
            ),
            self._streams,
        )
        self._spent = spend(self.budget, self._spent, step, outcome.bill)
        left_kg, left_kwh = budget_left(self.budget, self._spent, step)
        record = interval_record(
            step,
            t0,
            hour,
            snapshot,
            energy,
            outcome,
            dt_min=dt_min,
            free_flow_time_min=self.city.free_flow_time_min,
            carbon_g_per_kwh=float(self.carbon_g_per_kwh[step]),
            datacentre_g_per_kwh=intensity,
            units_refused=float(requested.sum()) - outcome.units_used,
            budget_left=budget_left_share(self.budget, self._spent, step),
            budget_left_kg=left_kg,
            budget_left_kwh=left_kwh,
        )
        self._traffic, self._energy, self._monitoring = traffic, energy, monitoring
        self._truth, self._outcome, self._view = truth, outcome, None
        self.records.append(record)


def interval_process(world: World) -> Generator[simpy.Event, None, None]:
    """The world's one SimPy process: an interval's stages every `dt_min` minutes."""
    while True:
        world._interval()
        yield world.env.timeout(world.dt_min)


def _shaped(values: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A read-only float copy of ``values``, which must have ``shape``."""
    array = np.array(values, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}; expected {shape}")
    return read_only(array)
