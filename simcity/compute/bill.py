"""GPU compute bills: FLOPs of the monitoring analytics and of the policy into kWh, gCO2, money.

A `DeviceProfile` turns FLOPs into joules with a linear utilisation-power model: each
accelerator that is on draws its idle power, plus ``(max - idle)`` times its busy share,
where "busy" means running at the profile's achievable FLOP/s (``peak × utilisation``).
This is the linear model of Fan, Weber & Barroso, "Power provisioning for a warehouse-sized
computer" (ISCA 2007), ``P(u) = P_idle + (P_max - P_idle) · u``, here applied per device as a
first-order model (real GPU power also depends on clocks and on how memory-bound the work
is: calibrate against measurements where a GPU is at hand). Devices are powered on only as
the load needs them, so a step's energy is

    E = n_on × idle_power_w × seconds + (max_power_w - idle_power_w) × flop / achievable_flop_s

and the dynamic part depends only on the FLOPs, not on how they are spread over the step.
Int8 work (a quantised policy's matmuls) runs at the device's int8 rate: a profile with
``peak_int8_op_s`` bills each int8 op as ``peak_flop_s / peak_int8_op_s`` FLOPs at its own
precision (`DeviceProfile.billed_flop`), the same utilisation assumed for both, so callers
hand `bill_step` (and the env) FLOP-equivalents; a profile without an int8 figure bills an
int8 op as one FLOP.
`bill_step` applies it to one simulation step; `NvmlEnergyMeter` measures real joules with
NVML's energy counter where a GPU exists, and `calibrate_profile` fits a profile to them.
Money is in one unspecified currency: ``price_per_kwh`` and ``carbon_price_per_t`` share it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from simcity.config.devices import DeviceProfile, check_count, check_nonnegative
from simcity.errors import SimcityError

_J_PER_KWH = 3.6e6
_G_PER_T = 1e6
_ROUNDING = 1e-12
"""Relative slack when counting GPUs: a load of exactly one GPU's achievable FLOP/s,
rounded up by floating point to 1 + 2e-16 GPUs, still needs one GPU, not two."""


class ComputeBill(NamedTuple):
    """What one step of analytics and policy inference cost (facility level unless it says IT)."""

    num_gpus: int  # devices powered on
    it_energy_kwh: float  # at the devices
    facility_energy_kwh: float  # it_energy_kwh × PUE
    analytics_energy_kwh: float  # share of facility_energy_kwh, by FLOPs
    policy_energy_kwh: float  # the rest: analytics + policy = facility
    carbon_g: float  # facility_energy_kwh × grid intensity
    energy_cost: float  # facility_energy_kwh × price_per_kwh
    carbon_cost: float  # carbon tonnes × carbon_price_per_t
    flop: float  # analytics + policy FLOPs this step
    utilisation: float  # busy share of the devices that are on, 0-1 (0 with none on)
    it_power_w: float  # mean power at the devices over the step


# --- the step bill -----------------------------------------------------------------


def bill_step(
    *,
    device: DeviceProfile,
    analytics_flop_per_unit_min: float,
    units: float,
    policy_flop_per_decision: float,
    decisions: int,
    dt_min: float,
    min_gpus: int = 0,
    pue: float,
    intensity_g_per_kwh: float,
    price_per_kwh: float,
    carbon_price_per_t: float,
) -> ComputeBill:
    """Energy, carbon and money of one step's analytics and policy inference on ``device``.

    Each of the ``units`` monitoring units in use runs a perception model on one stream
    (``analytics_flop_per_unit_min`` FLOPs per unit-minute); the policy runs ``decisions``
    times at ``policy_flop_per_decision``. Both run on the same pool of devices, their
    FLOPs spread over the step. The pool powers on
    ``max(min_gpus, ceil(flop_s / achievable_flop_s))`` devices (none with no load and
    ``min_gpus == 0``); each draws its idle power, and the load adds
    ``(max - idle) × flop_s / achievable_flop_s`` watts (the load spread over the devices
    that are on, none past its max). Energy at the devices × ``pue`` is the facility's;
    carbon and money follow from it. The facility energy is split between analytics and
    policy in proportion to their FLOPs, idle energy included (a step with no FLOPs puts
    it all, i.e. the idle draw of ``min_gpus``, on the analytics, which keep them on).

    One H100-like GPU half busy for 15 minutes: (70 + 630 × 0.5) W × 0.25 h = 96.25 Wh.

    >>> gpu = DeviceProfile(name="h100ish", precision="bf16", peak_flop_s=1e15,
    ...                     utilisation=0.5, idle_power_w=70, max_power_w=700)
    >>> bill = bill_step(device=gpu, analytics_flop_per_unit_min=1.5e15, units=10,
    ...                  policy_flop_per_decision=0, decisions=0, dt_min=15, pue=1.0,
    ...                  intensity_g_per_kwh=400, price_per_kwh=0.15, carbon_price_per_t=100)
    >>> bill.num_gpus, round(bill.it_energy_kwh, 6), round(bill.carbon_g, 6)
    (1, 0.09625, 38.5)
    """
    flop_per_unit_min = check_nonnegative(
        "analytics_flop_per_unit_min", analytics_flop_per_unit_min
    )
    units = check_nonnegative("units", units)
    flop_per_decision = check_nonnegative("policy_flop_per_decision", policy_flop_per_decision)
    decisions = check_count("decisions", decisions)
    dt_min = check_nonnegative("dt_min", dt_min)
    if dt_min == 0.0:
        raise SimcityError("is zero", field="dt_min", expected="a step length > 0 minutes")
    min_gpus = check_count("min_gpus", min_gpus)
    pue = check_nonnegative("pue", pue)
    if pue < 1.0:
        raise SimcityError(f"is {pue}", field="pue", expected=">= 1 (facility over IT energy)")
    intensity_g_per_kwh = check_nonnegative("intensity_g_per_kwh", intensity_g_per_kwh)
    price_per_kwh = check_nonnegative("price_per_kwh", price_per_kwh)
    carbon_price_per_t = check_nonnegative("carbon_price_per_t", carbon_price_per_t)

    analytics_flop = flop_per_unit_min * units * dt_min
    policy_flop = flop_per_decision * decisions
    flop = analytics_flop + policy_flop
    if not math.isfinite(flop):
        field = "units" if math.isinf(analytics_flop) else "decisions"
        raise SimcityError("makes the step's FLOPs overflow", field=field, expected="fewer")
    seconds = dt_min * 60.0
    busy_gpus = flop / (seconds * device.peak_flop_s * device.utilisation)  # GPU-equivalents
    num_gpus = max(min_gpus, math.ceil(busy_gpus * (1.0 - _ROUNDING)))
    idle_w = device.idle_power_w
    it_power_w = num_gpus * idle_w + (device.max_power_w - idle_w) * busy_gpus
    it_energy_kwh = it_power_w * seconds / _J_PER_KWH
    facility_energy_kwh = it_energy_kwh * pue
    policy_energy_kwh = facility_energy_kwh * (policy_flop / flop) if flop > 0.0 else 0.0
    carbon_g = facility_energy_kwh * intensity_g_per_kwh
    return ComputeBill(
        num_gpus=num_gpus,
        it_energy_kwh=it_energy_kwh,
        facility_energy_kwh=facility_energy_kwh,
        analytics_energy_kwh=facility_energy_kwh - policy_energy_kwh,
        policy_energy_kwh=policy_energy_kwh,
        carbon_g=carbon_g,
        energy_cost=facility_energy_kwh * price_per_kwh,
        carbon_cost=carbon_g / _G_PER_T * carbon_price_per_t,
        flop=flop,
        utilisation=busy_gpus / num_gpus if num_gpus else 0.0,
        it_power_w=it_power_w,
    )
