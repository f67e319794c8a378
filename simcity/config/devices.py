"""The device catalogue: `DeviceProfile` (peak FLOP/s, achievable share, idle and max power)
and the shipped and user device files. How a profile bills work: `simcity.compute.bill`.

Configuration, like a scenario: a scenario's ``[compute] device`` is checked against it
when the scenario loads.
"""

from __future__ import annotations

import functools
import math
import operator
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simcity.errors import SimcityError
from simcity.safe_io import SCENARIO_MAX_BYTES, excerpt, read_text

DEVICES_PATH = Path(__file__).parent.parent / "data" / "devices.toml"
"""The device profiles shipped with simcity (public spec figures, sources inside)."""

Precision = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8"]
Provenance = Literal["datasheet", "calibrated", "measured"]
"""Where a profile's figures come from: public spec sheets (with the stated assumptions),
a fit to measured runs (`simcity.compute.measure.calibrate_profile`), or measured on
this machine (`simcity calibrate`)."""
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
    provenance: Provenance = "datasheet"
    """What kind of figures these are; every bill made with this profile carries it."""
    formats: tuple[Precision, ...] | None = None
    """Number formats the device executes (a kernel exists for them); None: fp32, the
    profile's `precision`, and int8 where `peak_int8_op_s` is given (`executes`)."""
    call_overhead_s: _NonNegative = 0.0
    """Floor of one inference call's time on the device (kernel launches, dispatch,
    synchronisation): a small model's call lasts ``max(call_overhead_s, work /
    achievable_flop_s)`` (`call_seconds`)."""
    call_power_w: _NonNegative | None = None
    """Power above idle while one inference call runs; None: ``(max_power_w -
    idle_power_w) × utilisation``, the linear power model at the assumed busy share."""

    @model_validator(mode="after")
    def _max_covers_idle(self) -> DeviceProfile:
        if self.max_power_w < self.idle_power_w:
            raise ValueError(
                f"max_power_w {self.max_power_w} is below idle_power_w {self.idle_power_w}"
            )
        return self

    @property
    def executed_formats(self) -> tuple[Precision, ...]:
        """The number formats this device runs (see `formats`)."""
        if self.formats is not None:
            return self.formats
        int8: tuple[Precision, ...] = ("int8",) if self.peak_int8_op_s is not None else ()
        return tuple(dict.fromkeys(("fp32", self.precision, *int8)))

    def executes(self, precision: str) -> bool:
        """Whether a model in ``precision`` can run here.

        >>> cpu = DeviceProfile(name="cpu", precision="fp32", peak_flop_s=1e12,
        ...                     utilisation=0.5, idle_power_w=50, max_power_w=150)
        >>> cpu.executes("fp32"), cpu.executes("int8")
        (True, False)
        """
        return precision in self.executed_formats

    @property
    def call_busy_power_w(self) -> float:
        """Power above idle while one inference call runs (`call_power_w`)."""
        if self.call_power_w is not None:
            return self.call_power_w
        return (self.max_power_w - self.idle_power_w) * self.utilisation

    def call_seconds(self, flop: float, int8_op: float = 0.0) -> float:
        """Time on the device of one call of ``flop`` FLOPs and ``int8_op`` int8 ops: the
        larger of the call's overhead floor and its work at achievable throughput.

        >>> gpu = DeviceProfile(name="toy", precision="fp16", peak_flop_s=100e12,
        ...                     utilisation=0.5, idle_power_w=10, max_power_w=60,
        ...                     call_overhead_s=1e-3)
        >>> gpu.call_seconds(1e6), gpu.call_seconds(1e12)  # launch-bound, then work-bound
        (0.001, 0.02)
        """
        return max(self.call_overhead_s, self.billed_flop(flop, int8_op) / self.achievable_flop_s)

    def call_energy_j(self, seconds: float) -> float:
        """Joules above idle of a call that keeps the device ``seconds``: time × power.

        >>> gpu = DeviceProfile(name="toy", precision="fp16", peak_flop_s=100e12,
        ...                     utilisation=0.5, idle_power_w=10, max_power_w=60,
        ...                     call_overhead_s=1e-3)
        >>> gpu.call_energy_j(gpu.call_seconds(1e6))  # 25 W above idle for 1 ms
        0.025
        """
        return self.call_busy_power_w * check_nonnegative("seconds", seconds)

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
        flop = check_nonnegative("flop", flop)
        int8_op = check_nonnegative("int8_op", int8_op)
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
        f"unknown device {excerpt(name)}",
        file=path,  # None for shipped names: the caller's own file is the one to name
        field="device",
        expected="one of " + ", ".join(excerpt(key, 40)[1:-1] for key in sorted(devices)[:30]),
    )


@functools.cache
def _shipped_devices() -> dict[str, DeviceProfile]:
    return _read_devices(DEVICES_PATH)


def _read_devices(path: Path) -> dict[str, DeviceProfile]:
    expected = "a device file (UTF-8 TOML: one [name] table per device)"
    text = read_text(path, expected=expected, max_bytes=SCENARIO_MAX_BYTES)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SimcityError(f"not valid TOML: {err}", file=path, expected=expected) from None
    except (RecursionError, ValueError):  # arrays nested thousands deep, a 5,000-digit number
        raise SimcityError("cannot be read as TOML", file=path, expected=expected) from None
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
            text += f" (got {excerpt(first.get('input'))})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return field, text + more


def check_nonnegative(name: str, value: float) -> float:
    try:
        if isinstance(value, str):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise SimcityError(f"is {value!r}", field=name, expected="a number >= 0") from None
    if not 0.0 <= number < math.inf:  # also false for NaN
        raise SimcityError(f"is {number}", field=name, expected="a finite number >= 0")
    return number


def check_count(name: str, value: int) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise SimcityError(f"is {value!r}", field=name, expected="a whole number >= 0") from None
    if count < 0:
        raise SimcityError(f"is {count}", field=name, expected="a whole number >= 0")
    return count


def check_positive(name: str, value: float) -> float:
    number = check_nonnegative(name, value)
    if number == 0.0:
        raise SimcityError("is 0", field=name, expected="a finite number > 0")
    return number
