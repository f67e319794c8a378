"""Compute bills: the monitoring analytics and the policy's own decisions into kWh, gCO2, money.

Analytics (every monitoring unit runs a perception model on a stream) are batched work on
a pool of devices, billed with a linear utilisation-power model: each device that is on
draws its idle power, plus ``(max - idle)`` times its busy share, where "busy" means
running at the profile's achievable FLOP/s (``peak × utilisation``) (Fan, Weber &
Barroso, "Power provisioning for a warehouse-sized computer", ISCA 2007). Devices are
powered on only as the analytics need them (or ``min_gpus``), so their energy is

    E = n_on × idle_power_w × seconds + (max_power_w - idle_power_w) × flop / achievable_flop_s

The policy is one small inference call per decision, bound by launches and dispatch more
than by FLOPs, so it is billed as time on its own device (`PolicyCompute.device`, by
default the analytics device) × the power of a call: time is the measured latency when
one is given, else ``max(call_overhead_s, FLOPs / achievable_flop_s)``
(`DeviceProfile.call_seconds`, `call_energy_j`). The device it runs on is one kept on
anyway (shared serving), so the policy pays the energy its calls add, never a device's
idle: a policy that allocates nothing pays no more fleet idle than any other. A policy in
a format its device does not execute (int8 on a device without int8 kernels) is refused.
Int8 work on a device that runs it is billed at its int8 rate (`DeviceProfile.billed_flop`).

Every bill says where its figures came from: the provenance of the profile that billed the
analytics and of the one (or the measurement) that billed the policy.
Money is in one unspecified currency: ``price_per_kwh`` and ``carbon_price_per_t`` share it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from simcity.config.devices import DeviceProfile, check_count, check_nonnegative
from simcity.config.monitoring import ComputeConfig
from simcity.errors import SimcityError

_J_PER_KWH = 3.6e6
_G_PER_T = 1e6
_ROUNDING = 1e-12
"""Relative slack when counting GPUs: a load of exactly one GPU's achievable FLOP/s,
rounded up by floating point to 1 + 2e-16 GPUs, still needs one GPU, not two."""


class PolicyCompute(NamedTuple):
    """What one decision of the allocation policy costs to run, and where it runs."""

    flop: float = 0.0
    """FLOP-equivalents per decision; with no latency, 0 means a heuristic (nothing billed)."""
    device: DeviceProfile | None = None
    """The device it runs on; None: the analytics device."""
    latency_s: float | None = None
    """Measured time per decision on ``device``; billed instead of the modelled time."""
    precision: str = "fp32"
    """The number format it runs in; ``device`` must execute it."""


class ComputeBill(NamedTuple):
    """What one step of analytics and policy inference cost (facility level unless it says IT)."""

    num_gpus: int  # devices powered on
    it_energy_kwh: float  # at the devices
    facility_energy_kwh: float  # it_energy_kwh × PUE
    analytics_energy_kwh: float  # the analytics fleet's part of facility_energy_kwh
    policy_energy_kwh: float  # the policy's calls: analytics + policy = facility
    carbon_g: float  # facility_energy_kwh × grid intensity
    energy_cost: float  # facility_energy_kwh × price_per_kwh
    carbon_cost: float  # carbon tonnes × carbon_price_per_t
    flop: float  # analytics + policy FLOPs this step
    utilisation: float  # busy share of the analytics devices that are on, 0-1 (0: none on)
    it_power_w: float  # mean power at the devices over the step
    policy_seconds: float = 0.0  # time on its device of one decision
    analytics_provenance: str = "datasheet"  # of the profile that billed the analytics
    policy_provenance: str = "none"  # of the policy's figures: "none" for a heuristic


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
    policy_device: DeviceProfile | None = None,
    policy_latency_s: float | None = None,
    policy_precision: str = "fp32",
) -> ComputeBill:
    """Energy, carbon and money of one step's analytics and policy decisions (module doc).

    Each of the ``units`` monitoring units in use runs a perception model on one stream
    (``analytics_flop_per_unit_min`` FLOPs per unit-minute) on a pool of ``device``: it
    powers on ``max(min_gpus, ceil(flop_s / achievable_flop_s))`` devices (none with no
    load and ``min_gpus == 0``); each draws its idle power, and the load adds
    ``(max - idle) × flop_s / achievable_flop_s`` watts. The policy decides ``decisions``
    times, each a call of ``policy_flop_per_decision`` FLOP-equivalents on
    ``policy_device`` (default ``device``) in ``policy_precision``, billed as its time
    (``policy_latency_s`` if measured, else `DeviceProfile.call_seconds`) × the call's
    power (`DeviceProfile.call_energy_j`); a decision of no FLOPs and no latency (a
    heuristic) costs nothing. Energy at the devices × ``pue`` is the facility's; carbon
    and money follow from it.

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
    policy = device if policy_device is None else policy_device
    if flop_per_decision > 0.0 and not policy.executes(policy_precision):
        raise SimcityError(
            f"device {policy.name!r} does not run {policy_precision}",
            field="policy_device",
            expected="a device whose formats include it: " + ", ".join(policy.executed_formats),
        )
    if policy_latency_s is not None:
        policy_seconds = check_nonnegative("policy_latency_s", policy_latency_s)
        policy_provenance = "measured"
    elif flop_per_decision > 0.0:
        policy_seconds = policy.call_seconds(flop_per_decision)
        policy_provenance = policy.provenance
    else:
        policy_seconds, policy_provenance = 0.0, "none"
    policy_flop = flop_per_decision * decisions
    flop = analytics_flop + policy_flop
    if not math.isfinite(flop):
        if math.isinf(analytics_flop):
            field, what = "compute.analytics_flop_per_unit_min", "units x FLOPs per unit-minute"
        else:
            field, what = "policy_flop_per_decision", "decisions x FLOPs per decision"
        raise SimcityError(
            f"the step's FLOPs ({what}) overflow", field=field, expected="a finite product"
        )
    seconds = dt_min * 60.0
    busy_gpus = analytics_flop / (seconds * device.peak_flop_s * device.utilisation)
    num_gpus = max(min_gpus, math.ceil(busy_gpus * (1.0 - _ROUNDING)))
    idle_w = device.idle_power_w
    analytics_power_w = num_gpus * idle_w + (device.max_power_w - idle_w) * busy_gpus
    policy_j = decisions * policy.call_energy_j(policy_seconds)
    it_power_w = analytics_power_w + policy_j / seconds
    it_energy_kwh = it_power_w * seconds / _J_PER_KWH
    facility_energy_kwh = it_energy_kwh * pue
    policy_energy_kwh = policy_j / _J_PER_KWH * pue
    carbon_g = facility_energy_kwh * intensity_g_per_kwh
    return ComputeBill(
        num_gpus=num_gpus,
        it_energy_kwh=it_energy_kwh,
        facility_energy_kwh=facility_energy_kwh,
        analytics_energy_kwh=analytics_power_w * seconds / _J_PER_KWH * pue,
        policy_energy_kwh=policy_energy_kwh,
        carbon_g=carbon_g,
        energy_cost=facility_energy_kwh * price_per_kwh,
        carbon_cost=carbon_g / _G_PER_T * carbon_price_per_t,
        flop=flop,
        utilisation=busy_gpus / num_gpus if num_gpus else 0.0,
        it_power_w=it_power_w,
        policy_seconds=policy_seconds,
        analytics_provenance=device.provenance,
        policy_provenance=policy_provenance,
    )


def bill_compute(
    compute: ComputeConfig,
    device: DeviceProfile,
    policy: PolicyCompute,
    *,
    units: float,
    dt_min: float,
    intensity_g_per_kwh: float,
    fleet_on: bool = True,
) -> ComputeBill:
    """`bill_step` of one decision and ``units`` of analytics under a scenario's
    ``[compute]``: the one place the world (`simcity.compute.budget`) and monitoring bill a
    step. ``units`` are units of capacity (`ComputeConfig.unit_flop_per_min` each: with
    analytics tiers, a unit of tier t counts ``tier_cost[t]`` of them, so the FLOPs billed
    are ``sum_t units_t * flop_t``). ``fleet_on`` False switches the analytics fleet off
    (no ``min_gpus`` kept on): what a carbon or energy budget does when even the fleet's
    idle no longer fits."""
    return bill_step(
        device=device,
        analytics_flop_per_unit_min=compute.unit_flop_per_min,
        units=units,
        policy_flop_per_decision=policy.flop,
        decisions=1,
        dt_min=dt_min,
        min_gpus=compute.min_gpus if fleet_on else 0,
        pue=compute.pue,
        intensity_g_per_kwh=intensity_g_per_kwh,
        price_per_kwh=compute.price_per_kwh,
        carbon_price_per_t=compute.carbon_price_per_t,
        policy_device=policy.device,
        policy_latency_s=policy.latency_s,
        policy_precision=policy.precision,
    )
