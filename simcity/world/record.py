"""`StepRecord`: what the world did over one decision interval, in plain numbers."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from simcity.energy.load import EnergyState
from simcity.monitoring.monitor import StepOutcome
from simcity.traffic.day import TrafficSnapshot
from simcity.traffic.delay import incident_delay_veh_h


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
    incident_delay_veh_h: float
    """Vehicle-hours of travel delay accidents added over the interval
    (`simcity.traffic.delay`)."""
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
    compute_policy_s: float
    """Time on its device of the policy's decision (0 for a heuristic)."""
    compute_gco2: float
    compute_energy_cost: float
    compute_carbon_cost: float
    gpus_on: int
    datacentre_g_per_kwh: float
    units_refused: float
    """Units of the requested allocation the compute budget refused (0 without one)."""
    compute_budget_left: float
    """Share left of the day's compute budget after this step, 0-1 (the smaller of carbon
    and energy; 1 without a budget)."""
    compute_budget_left_kg: float
    """Compute carbon budget left in the day after this step, kg CO2; 0 without a carbon
    budget (then ``compute_budget_left`` is 1)."""
    compute_budget_left_kwh: float
    """Compute energy budget left in the day after this step, kWh; 0 without an energy
    budget."""

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in _RECORD_FIELDS}


_RECORD_FIELDS = tuple(f.name for f in fields(StepRecord))


def interval_record(
    step: int,
    t0_min: float,
    hour_local: float,
    traffic: TrafficSnapshot,
    energy: EnergyState,
    outcome: StepOutcome,
    *,
    dt_min: float,
    free_flow_time_min: np.ndarray,
    carbon_g_per_kwh: float,
    datacentre_g_per_kwh: float,
    units_refused: float = 0.0,
    budget_left: float = 1.0,
    budget_left_kg: float = 0.0,
    budget_left_kwh: float = 0.0,
) -> StepRecord:
    """The interval's `StepRecord` from what its stages returned and the grids' intensity."""
    flows, times = traffic.assignment.flows_veh_h, traffic.assignment.times_min
    total_kw = float(energy.node_load_kw.sum())
    energy_kwh = total_kw * dt_min / 60.0
    intensity = carbon_g_per_kwh
    vc = flows / traffic.capacity_veh_h
    free_tt = float(flows @ free_flow_time_min)
    tstt = float(flows @ times)
    bill = outcome.bill
    return StepRecord(
        step=step,
        time_min=t0_min,
        hour_local=hour_local,
        demand_veh_h=float(traffic.od_veh_h.sum()),
        tstt_veh_h_per_h=tstt / 60.0,
        travel_time_index=tstt / free_tt if free_tt > 0 else 1.0,
        mean_vc=float(vc.mean()),
        max_vc=float(vc.max()),
        assignment_iterations=traffic.assignment.num_iterations,
        assignment_rel_gap=traffic.assignment.rel_gap,
        incident_delay_veh_h=incident_delay_veh_h(traffic, dt_min),
        load_kw=total_kw,
        peak_node_load_kw=float(energy.node_load_kw.max()),
        ev_load_kw=energy.ev_kw,
        temperature_c=energy.temperature_c,
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
        compute_policy_s=bill.policy_seconds,
        compute_gco2=bill.carbon_g,
        compute_energy_cost=bill.energy_cost,
        compute_carbon_cost=bill.carbon_cost,
        gpus_on=bill.num_gpus,
        datacentre_g_per_kwh=datacentre_g_per_kwh,
        units_refused=units_refused,
        compute_budget_left=budget_left,
        compute_budget_left_kg=budget_left_kg,
        compute_budget_left_kwh=budget_left_kwh,
    )
