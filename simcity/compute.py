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

import functools
import math
import operator
import tomllib
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simcity.errors import SimcityError

DEVICES_PATH = Path(__file__).parent / "data" / "devices.toml"
"""The device profiles shipped with simcity (public spec figures, sources inside)."""

_J_PER_KWH = 3.6e6
_G_PER_T = 1e6
_ROUNDING = 1e-12
"""Relative slack when counting GPUs: a load of exactly one GPU's achievable FLOP/s,
rounded up by floating point to 1 + 2e-16 GPUs, still needs one GPU, not two."""

Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8"]
_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class DeviceProfile(BaseModel):
    """One accelerator (or CPU server): its peak FLOP/s, achievable share, idle and max power.

    Powers are per device (a GPU board, a module, or a CPU server's packages); `bill_step`
    powers on as many devices as the load needs.

    >>> gpu = DeviceProfile(name="toy", precision="fp16", peak_flop_s=100e12,
    ...                     utilisation=0.5, idle_power_w=10, max_power_w=60)
    >>> gpu.achievable_flop_s
    50000000000000.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    precision: Precision
    """Number format the analytics run at; `peak_flop_s` is quoted for this one."""
    peak_flop_s: _Positive
    """Dense peak at `precision` (sparse datasheet figures halved)."""
    utilisation: Annotated[float, Field(gt=0, le=1)]
    """Achievable share of `peak_flop_s` for the workload, (0, 1]."""
    idle_power_w: _NonNegative
    max_power_w: _Positive
    peak_int8_op_s: _Positive | None = None
    """Dense peak int8 ops/s (sparse datasheet figures halved), or None where the datasheet
    gives none: then an int8 op is billed as one FLOP (see `billed_flop`)."""
    memory_gb: _NonNegative | None = None
    """Informational only."""
    source: str = ""
    """Where the figures come from, and which are typical rather than spec."""

    @model_validator(mode="after")
    def _max_covers_idle(self) -> DeviceProfile:
        if self.max_power_w < self.idle_power_w:
            raise ValueError(
                f"max_power_w {self.max_power_w} is below idle_power_w {self.idle_power_w}"
            )
        return self

    @property
    def achievable_flop_s(self) -> float:
        """FLOP/s one device sustains when fully busy: ``peak_flop_s × utilisation``."""
        return self.peak_flop_s * self.utilisation

    def billed_flop(self, flop: float, int8_op: float = 0.0) -> float:
        """FLOPs at `precision` that cost what ``flop`` FLOPs plus ``int8_op`` int8 ops cost.

        >>> gpu = DeviceProfile(name="toy", precision="bf16", peak_flop_s=100e12,
        ...                     peak_int8_op_s=200e12, utilisation=0.5, idle_power_w=10,
        ...                     max_power_w=60)
        >>> gpu.billed_flop(1e6, int8_op=4e6)  # int8 at twice the rate: 4e6 ops cost 2e6
        3000000.0
        """
        flop = _nonnegative("flop", flop)
        int8_op = _nonnegative("int8_op", int8_op)
        ratio = 1.0 if self.peak_int8_op_s is None else self.peak_flop_s / self.peak_int8_op_s
        return flop + int8_op * ratio

    def busy_energy_j(self, flop: float, int8_op: float = 0.0) -> float:
        """Joules at the device that ``flop`` FLOPs and ``int8_op`` int8 ops add to its idle
        draw: ``(max_power_w - idle_power_w) × billed_flop / achievable_flop_s``, the
        marginal energy of work on a device that is on anyway (e.g. one policy decision).

        >>> gpu = DeviceProfile(name="toy", precision="fp16", peak_flop_s=100e12,
        ...                     utilisation=0.5, idle_power_w=10, max_power_w=60)
        >>> gpu.busy_energy_j(1e12)  # 50 W for 1e12 / 5e13 s
        1.0
        """
        busy_s = self.billed_flop(flop, int8_op) / self.achievable_flop_s
        return (self.max_power_w - self.idle_power_w) * busy_s


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


# --- loading profiles --------------------------------------------------------------


def load_devices(path: str | Path | None = None) -> dict[str, DeviceProfile]:
    """Device profiles by name, from the shipped file or a user's file of the same format.

    The format is one TOML table per device, named by the table (``[my_gpu]``), with the
    fields of `DeviceProfile` other than ``name``. Errors name the file and the field.

    >>> devices = load_devices()
    >>> devices["h100_sxm"].peak_flop_s, devices["h100_sxm"].max_power_w
    (989400000000000.0, 700.0)
    """
    if path is None:
        return dict(_shipped_devices())
    return _read_devices(Path(path))


def device_profile(name: str, path: str | Path | None = None) -> DeviceProfile:
    """The profile called ``name`` (case-insensitive), shipped or from the file at ``path``.

    >>> device_profile("T4").precision
    'fp16'
    """
    devices = load_devices(path)
    if name in devices:
        return devices[name]
    folded = {key.lower(): profile for key, profile in devices.items()}
    key = name.strip().lower()
    if key in folded:
        return folded[key]
    raise SimcityError(
        f"unknown device {name!r}",
        file=path,  # None for shipped names: the caller's own file is the one to name
        field="device",
        expected="one of " + ", ".join(sorted(devices)),
    )


@functools.cache
def _shipped_devices() -> dict[str, DeviceProfile]:
    return _read_devices(DEVICES_PATH)


def _read_devices(path: Path) -> dict[str, DeviceProfile]:
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise SimcityError("no such device file", file=path) from None
    except OSError as err:
        raise SimcityError(f"cannot read device file: {err.strerror}", file=path) from None
    except tomllib.TOMLDecodeError as err:
        raise SimcityError(f"not valid TOML: {err}", file=path) from None
    if not raw:
        raise SimcityError("no device profiles", file=path, expected="one [name] table per device")
    devices: dict[str, DeviceProfile] = {}
    for key, table in raw.items():
        if not isinstance(table, dict):
            raise SimcityError(
                "is not a table", file=path, field=key, expected=f"a [{key}] table of fields"
            )
        if "name" in table:
            raise SimcityError(
                "unknown key (the table's name is the device's name)",
                file=path,
                field=f"{key}.name",
            )
        try:
            devices[key] = DeviceProfile.model_validate({"name": key, **table})
        except ValidationError as err:
            field, text = _describe(err)
            raise SimcityError(text, file=path, field=f"{key}.{field}" if field else key) from None
    return devices


def _describe(err: ValidationError) -> tuple[str, str]:
    errors = err.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        text = "unknown key"
    elif first["type"] == "missing":
        text = "missing required key"
    else:
        text = str(first["msg"]).removeprefix("Value error, ")
        if field:
            text += f" (got {first.get('input')!r})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return field, text + more


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
    flop_per_unit_min = _nonnegative("analytics_flop_per_unit_min", analytics_flop_per_unit_min)
    units = _nonnegative("units", units)
    flop_per_decision = _nonnegative("policy_flop_per_decision", policy_flop_per_decision)
    decisions = _count("decisions", decisions)
    dt_min = _nonnegative("dt_min", dt_min)
    if dt_min == 0.0:
        raise SimcityError("is zero", field="dt_min", expected="a step length > 0 minutes")
    min_gpus = _count("min_gpus", min_gpus)
    pue = _nonnegative("pue", pue)
    if pue < 1.0:
        raise SimcityError(f"is {pue}", field="pue", expected=">= 1 (facility over IT energy)")
    intensity_g_per_kwh = _nonnegative("intensity_g_per_kwh", intensity_g_per_kwh)
    price_per_kwh = _nonnegative("price_per_kwh", price_per_kwh)
    carbon_price_per_t = _nonnegative("carbon_price_per_t", carbon_price_per_t)

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


def _nonnegative(name: str, value: float) -> float:
    try:
        if isinstance(value, str):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise SimcityError(f"is {value!r}", field=name, expected="a number >= 0") from None
    if not 0.0 <= number < math.inf:  # also false for NaN
        raise SimcityError(f"is {number}", field=name, expected="a finite number >= 0")
    return number


def _count(name: str, value: int) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise SimcityError(f"is {value!r}", field=name, expected="a whole number >= 0") from None
    if count < 0:
        raise SimcityError(f"is {count}", field=name, expected="a whole number >= 0")
    return count


def _positive(name: str, value: float) -> float:
    number = _nonnegative(name, value)
    if number == 0.0:
        raise SimcityError("is 0", field=name, expected="a finite number > 0")
    return number
