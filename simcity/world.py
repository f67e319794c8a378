"""The world on SimPy: traffic, electric demand and grid carbon through a simulated day.

SimPy time is minutes since the start of the episode. Each subsystem is a short SimPy
process that, once per decision interval, calls a pure NumPy function for the interval
that starts now (evaluated at its midpoint) and sleeps for `dt_min`. `World.advance`
runs the clock to the end of the next interval and returns what happened in it.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import simpy

from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.config.scenario import (
    BUNDLED_TRACES,
    CarbonConfig,
    ConstantCarbon,
    DailyCarbon,
    Scenario,
)
from simcity.energy import carbon
from simcity.energy import load as energy
from simcity.monitoring.monitor import Monitoring, StepOutcome
from simcity.monitoring.truth import TrueState, true_state
from simcity.traffic.assignment import Assignment, bpr_time
from simcity.traffic.day import traffic_day
from simcity.traffic.demand import city_gravity_od, event_od, od_at, zone_catchment


@dataclass(frozen=True)
class StepRecord:
    """What the world did over one decision interval."""

    step: int
    time_min: float
    hour_local: float
    demand_veh_h: float
    tstt_veh_h_per_h: float
    """Total system travel time accrued per hour of the interval (veh·h/h)."""
    travel_time_index: float
    """Travel time over free-flow travel time for the same flows (1 = free flow)."""
    mean_vc: float
    max_vc: float
    assignment_iterations: int
    assignment_rel_gap: float
    load_kw: float
    peak_node_load_kw: float
    ev_load_kw: float
    temperature_c: float
    carbon_g_per_kwh: float
    energy_kwh: float
    emissions_kg: float
    # Monitoring over the interval.
    units_used: float
    damage: float
    incidents_new: int
    incidents_detected: int
    incidents_missed: int
    incidents_open: int
    detection_delay_sum_min: float
    estimation_error: float
    compute_kwh: float
    """Facility energy of the monitoring analytics and the policy."""
    compute_policy_kwh: float
    compute_gco2: float
    compute_energy_cost: float
    compute_carbon_cost: float
    gpus_on: int
    datacentre_g_per_kwh: float

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(StepRecord))


class TrafficSnapshot(NamedTuple):
    """The traffic of the current interval."""

    od_veh_h: np.ndarray  # (Z, Z)
    assignment: Assignment
    capacity_veh_h: np.ndarray  # (L,) after any cuts


@lru_cache(maxsize=8)
def _trace(path: str, column: str) -> carbon.CarbonTrace:
    bundled = path in BUNDLED_TRACES
    return carbon.read_carbon_trace(
        carbon.bundled_trace_path(path) if bundled else Path(path), column=column
    )


def carbon_intensity(
    scenario: Scenario, minutes: np.ndarray, cfg: CarbonConfig | None = None
) -> np.ndarray:
    """Grid carbon intensity (g/kWh) at minutes after the episode start.

    ``cfg`` defaults to the city's grid (``scenario.carbon``).
    """
    cfg = scenario.carbon if cfg is None else cfg
    time = scenario.time
    hour_local = (time.start_hour + minutes / 60.0) % 24.0
    if isinstance(cfg, ConstantCarbon):
        return np.full(np.shape(minutes), cfg.intensity_g_per_kwh)
    if isinstance(cfg, DailyCarbon):
        return carbon.daily_intensity(
            hour_local, cfg.mean_g_per_kwh, cfg.amplitude_g_per_kwh, cfg.min_hour
        )
    time_s = carbon.local_times_to_utc_s(time.date, time.timezone, time.start_hour * 60 + minutes)
    return carbon.trace_intensity(_trace(cfg.path, cfg.column), time_s, wrap_year=cfg.wrap_year)


class World:
    """A city's traffic, electric demand and carbon intensity on a SimPy clock."""

    def __init__(
        self,
        scenario: Scenario,
        city: City | None = None,
        *,
        file: str = "<scenario>",
        rng: np.random.Generator | None = None,
    ):
        self.scenario = scenario
        self.city = city if city is not None else build_city(scenario, file=file)
        time = scenario.time
        self.dt_min = time.dt_min
        self.num_steps = time.num_steps
        self.base_od = self._base_od()
        self._catchment = zone_catchment(self.city)
        weight = self.city.population + self.city.jobs + 1e-9
        zone_weight = np.bincount(self._catchment, weights=weight, minlength=self.city.num_zones)
        self._arrival_share = weight / zone_weight[self._catchment]  # (N,) share of its zone
        events = scenario.events
        self._event_zone = [self.city.nearest_node(e.lon, e.lat, zones_only=True) for e in events]
        self._event_node = [self.city.nearest_node(e.lon, e.lat) for e in events]
        midpoints = (np.arange(self.num_steps) + 0.5) * self.dt_min
        self.carbon_g_per_kwh = carbon_intensity(scenario, midpoints)  # (T,)
        self.datacentre_g_per_kwh = (
            self.carbon_g_per_kwh
            if scenario.datacentre_carbon is None
            else carbon_intensity(scenario, midpoints, scenario.datacentre_carbon)
        )
        self.capacity_factor = np.ones(self.city.num_links)
        """External capacity cuts (the monitoring's accident cuts multiply in)."""
        event_kw = np.zeros(self.city.num_nodes)
        for event, node in zip(scenario.events, self._event_node, strict=True):
            event_kw[node] += event.load_kw  # feeders at venues are sized for their events
        self.feeder_kw = scenario.incidents.feeder_margin * (_peak_comfort_load_kw(self) + event_kw)
        self.monitoring = Monitoring(
            self.city, scenario, rng if rng is not None else np.random.default_rng(scenario.seed)
        )
        self.allocation = np.zeros(self.city.num_nodes)
        self.policy_flop_per_decision = 0.0
        self.outcome: StepOutcome | None = None
        self.state: TrueState | None = None
        """The last interval's true per-node quantities and incident rates."""
        self._day = traffic_day(
            self.city,
            scenario,
            lambda: [
                self.od_now(self.hour_local((k + 0.5) * self.dt_min)) for k in range(self.num_steps)
            ],
        )
        self.flows_veh_h = np.zeros(self.city.num_links)
        self.times_min = np.array(self.city.free_flow_time_min)
        self.ev_charging_veh = np.zeros(self.city.num_nodes)
        self.node_load_kw = np.zeros(self.city.num_nodes)
        self.ev_kw = 0.0
        self.temperature_c = scenario.weather.temp_mean_c
        self.traffic: TrafficSnapshot | None = None
        self.records: list[StepRecord] = []
        self.env = simpy.Environment()
        self.env.process(traffic_process(self))
        self.env.process(energy_process(self))
        self.env.process(monitoring_process(self))

    # -- helpers ------------------------------------------------------------------

    def _base_od(self) -> np.ndarray:
        traffic = self.scenario.traffic
        if traffic.demand == "tntp":
            assert self.city.od_veh_h is not None
            return traffic.demand_scale * np.asarray(self.city.od_veh_h, dtype=float)
        od = city_gravity_od(
            self.city,
            total_veh_h=traffic.base_trips_veh_h,
            decay_per_min=traffic.gravity_decay_per_min,
        )
        return traffic.demand_scale * od

    @property
    def step_index(self) -> int:
        return round(self.env.now / self.dt_min)

    def hour_local(self, minutes: float) -> float:
        return (self.scenario.time.start_hour + minutes / 60.0) % 24.0

    def od_now(self, hour: float) -> np.ndarray:
        """Zone-to-zone demand (veh/h) at a local hour, events included."""
        od = od_at(self.base_od, self.scenario.traffic.profile, hour)
        zone_pop = np.bincount(
            self._catchment, weights=self.city.population, minlength=self.city.num_zones
        )
        for event, zone in zip(self.scenario.events, self._event_zone, strict=True):
            od = od + event_od(event, zone, zone_pop, hour)
        return od

    # -- stepping -----------------------------------------------------------------

    def advance(self, allocation: np.ndarray | None = None) -> StepRecord:
        """Simulate the next decision interval under ``allocation`` (N,) and return its record.

        The allocation (monitoring units per node, default none) must already be valid:
        `CityEnv` maps and checks actions.
        """
        if self.step_index >= self.num_steps:
            raise RuntimeError("the episode is over")
        self.allocation = np.zeros(self.city.num_nodes) if allocation is None else allocation
        self.env.run(until=self.env.now + self.dt_min)
        return self.records[-1]

    def run(self) -> list[StepRecord]:
        """Simulate the remaining intervals of the episode."""
        while self.step_index < self.num_steps:
            self.advance()
        return self.records


def _peak_comfort_load_kw(world: World) -> np.ndarray:
    """Each node's peak building load over the day at comfort temperature (N,)."""
    cfg, city = world.scenario.energy, world.city
    loads = [
        energy.node_load_kw(
            hour,
            city.land_use,
            city.population,
            city.jobs,
            cfg.comfort_c,
            kw_per_resident=cfg.kw_per_resident,
            kw_per_job=cfg.kw_per_job,
        )
        for hour in np.arange(0.0, 24.0, 0.5)
    ]
    return np.maximum(np.max(loads, axis=0), 1e-3)


def traffic_process(world: World) -> Generator[simpy.Event, None, None]:
    """Equilibrium traffic for each interval, after the capacity cuts now in force.

    Drivers re-route around an accident only once it is detected (and announced): the
    equilibrium is solved with the known cuts; undetected ones only slow their links. On a
    traffic clock coarser than the steps (``solve_every_steps``) routes change only at its
    ticks, with the cuts known then; cuts found in between slow their links until the next.
    """
    network = world.city.network
    every = world.scenario.traffic.solve_every_steps
    routed = world.capacity_factor  # replaced at step 0, which is always a tick
    while True:
        step = world.step_index
        actual = world.capacity_factor * world.monitoring.cut_factor
        if step % every == 0:
            routed = world.capacity_factor * world.monitoring.known_cut_factor
        result = world._day.solve(step, routed)
        if not np.array_equal(routed, actual):
            times = bpr_time(
                result.flows_veh_h,
                network.free_flow_time_min,
                network.capacity_veh_h * actual,
                network.bpr_b,
                network.bpr_power,
            )
            result = result._replace(
                times_min=times, tstt_veh_min=float(result.flows_veh_h @ times)
            )
        world.flows_veh_h, world.times_min = result.flows_veh_h, result.times_min
        world.traffic = TrafficSnapshot(
            world._day.od(step), result, network.capacity_veh_h * actual
        )
        yield world.env.timeout(world.dt_min)


def energy_process(world: World) -> Generator[simpy.Event, None, None]:
    """Node electric load: buildings by land use and weather, EV charging, events."""
    cfg, weather, city = world.scenario.energy, world.scenario.weather, world.city
    while True:
        hour = world.hour_local(world.env.now + world.dt_min / 2)
        temp_c = float(
            energy.temperature_c(
                hour, weather.temp_mean_c, weather.temp_amplitude_c, weather.temp_peak_hour
            )
        )
        buildings_kw = energy.node_load_kw(
            hour,
            city.land_use,
            city.population,
            city.jobs,
            temp_c,
            kw_per_resident=cfg.kw_per_resident,
            kw_per_job=cfg.kw_per_job,
            comfort_c=cfg.comfort_c,
            cooling_per_deg_c=cfg.cooling_per_deg_c,
            heating_per_deg_c=cfg.heating_per_deg_c,
        )
        traffic = world.traffic
        assert traffic is not None, "the traffic process runs first in every interval"
        arrivals_zone_veh_h = traffic.od_veh_h.sum(axis=0)  # (Z,)
        arrivals_veh_h = arrivals_zone_veh_h[world._catchment] * world._arrival_share
        world.ev_charging_veh = energy.step_ev_charging(
            world.ev_charging_veh,
            arrivals_veh_h,
            world.dt_min,
            ev_share=cfg.ev_share,
            charge_duration_h=cfg.charge_duration_h,
        )
        ev_kw = energy.ev_load_kw(world.ev_charging_veh, cfg.charger_kw)
        load_kw = buildings_kw + ev_kw
        for event, node in zip(world.scenario.events, world._event_node, strict=True):
            if event.start_h <= hour < event.end_h:
                load_kw[node] += event.load_kw
        world.node_load_kw = load_kw
        world.ev_kw = float(ev_kw.sum())
        world.temperature_c = temp_c
        yield world.env.timeout(world.dt_min)


def monitoring_process(world: World) -> Generator[simpy.Event, None, None]:
    """Sensors, incidents, estimates and the compute bill; writes the interval's record."""
    city = world.city
    scheduled = world.scenario.incidents.scheduled
    start_h = world.scenario.time.start_hour
    planned = [((s.at_h - start_h) % 24.0) * 60.0 for s in scheduled]
    while True:
        step, t0 = world.step_index, world.env.now
        t1 = t0 + world.dt_min
        traffic = world.traffic
        assert traffic is not None, "the traffic process runs first in every interval"
        flows, times = traffic.assignment.flows_veh_h, traffic.assignment.times_min
        state = true_state(
            city,
            world.scenario,
            flows,
            times,
            traffic.capacity_veh_h,
            world.node_load_kw,
            world.feeder_kw,
            world.monitoring.hotspot,
        )
        due = [(i, t) for i, t in enumerate(planned) if t0 <= t < t1]
        outcome = world.monitoring.step(
            state,
            world.allocation,
            t0,
            t1,
            scheduled=due,
            policy_flop=world.policy_flop_per_decision,
            intensity_g_per_kwh=float(world.datacentre_g_per_kwh[step]),
        )
        world.state, world.outcome = state, outcome
        total_kw = float(world.node_load_kw.sum())
        energy_kwh = total_kw * world.dt_min / 60.0
        intensity = float(world.carbon_g_per_kwh[step])
        vc = flows / traffic.capacity_veh_h
        free_tt = float(flows @ city.free_flow_time_min)
        tstt = float(flows @ times)
        bill = outcome.bill
        world.records.append(
            StepRecord(
                step=step,
                time_min=t0,
                hour_local=world.hour_local(t0 + world.dt_min / 2),
                demand_veh_h=float(traffic.od_veh_h.sum()),
                tstt_veh_h_per_h=tstt / 60.0,
                travel_time_index=tstt / free_tt if free_tt > 0 else 1.0,
                mean_vc=float(vc.mean()),
                max_vc=float(vc.max()),
                assignment_iterations=traffic.assignment.num_iterations,
                assignment_rel_gap=traffic.assignment.rel_gap,
                load_kw=total_kw,
                peak_node_load_kw=float(world.node_load_kw.max()),
                ev_load_kw=world.ev_kw,
                temperature_c=world.temperature_c,
                carbon_g_per_kwh=intensity,
                energy_kwh=energy_kwh,
                emissions_kg=energy_kwh * intensity / 1000.0,
                units_used=outcome.units_used,
                damage=outcome.damage,
                incidents_new=outcome.num_new,
                incidents_detected=outcome.num_detected,
                incidents_missed=outcome.num_missed,
                incidents_open=outcome.num_open,
                detection_delay_sum_min=float(outcome.detection_delays_min.sum()),
                estimation_error=outcome.estimation_error,
                compute_kwh=bill.facility_energy_kwh,
                compute_policy_kwh=bill.policy_energy_kwh,
                compute_gco2=bill.carbon_g,
                compute_energy_cost=bill.energy_cost,
                compute_carbon_cost=bill.carbon_cost,
                gpus_on=bill.num_gpus,
                datacentre_g_per_kwh=float(world.datacentre_g_per_kwh[step]),
            )
        )
        yield world.env.timeout(world.dt_min)
