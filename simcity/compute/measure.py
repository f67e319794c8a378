"""Measured GPU energy: NVML's energy counter around real calls, and calibrated profiles.

Where the package nvidia-ml-py and an NVIDIA GPU are present, `NvmlEnergyMeter` reads
joules instead of modelling them; `calibrate_profile` fits a `DeviceProfile` to them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, NamedTuple

from simcity.config.devices import DeviceProfile, check_count, check_positive
from simcity.errors import SimcityError


class MeasuredEnergy(NamedTuple):
    """Energy and time of one call, averaged over ``num_calls`` back-to-back calls."""

    joules_per_call: float  # whole-board energy, idle draw included
    seconds_per_call: float
    power_w: float  # mean board power over the calls
    num_calls: int
    device_name: str


_NVML_EXPECTED = "package nvidia-ml-py installed and an NVIDIA GPU, Volta or newer"


class NvmlEnergyMeter:
    """Joules a GPU draws between `start` and `stop`, from NVML's board energy counter.

    The counter (``nvmlDeviceGetTotalEnergyConsumption``: millijoules since the driver
    loaded, Volta or newer) covers the whole board, so readings include idle draw and any
    other process on that GPU. The driver updates it at intervals of tens to hundreds of
    milliseconds, from sampled power on some GPUs: measure for a second or more (raise
    ``repeats``). The function measured must wait for its GPU work to finish (e.g.
    ``torch.cuda.synchronize()``) or the energy lands after `stop`.

    ``nvml`` is the NVML module (``pynvml``, imported when first needed if None); tests pass
    a stand-in. ``clock`` gives seconds. Use as ``with meter: ...`` then read
    ``meter.joules`` and ``meter.seconds``, or call `start`/`stop`, or `measure`.
    """

    def __init__(
        self,
        device_index: int = 0,
        *,
        nvml: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.device_index = check_count("device_index", device_index)
        self.device_name = ""
        self.joules = 0.0
        self.seconds = 0.0
        self._nvml = nvml
        self._clock = clock
        self._open: tuple[Any, Any] | None = None  # (nvml module, device handle) while started
        self._start_mj = 0
        self._start_s = 0.0

    @staticmethod
    def available(device_index: int = 0, *, nvml: Any = None) -> tuple[bool, str]:
        """Whether energy can be measured here, and why not (or which GPU) as text."""
        try:
            module, _handle, name, _mj = _open_nvml(nvml, device_index)
        except SimcityError as err:
            return False, err.message
        module.nvmlShutdown()
        return True, f"{name} (device {device_index})"

    def start(self) -> None:
        """Start counting; raises `SimcityError` saying why when NVML or a GPU is missing."""
        if self._open is not None:
            raise RuntimeError("NvmlEnergyMeter.start() called twice without stop()")
        module, handle, self.device_name, self._start_mj = _open_nvml(self._nvml, self.device_index)
        self._start_s = self._clock()
        self._open = (module, handle)

    def stop(self) -> float:
        """Joules drawn since `start` (also kept in ``joules``, the time in ``seconds``)."""
        if self._open is None:
            raise RuntimeError("NvmlEnergyMeter.stop() called before start()")
        module, handle = self._open
        try:
            end_mj = module.nvmlDeviceGetTotalEnergyConsumption(handle)
            end_s = self._clock()
        finally:
            self._open = None
            module.nvmlShutdown()
        self.joules = (end_mj - self._start_mj) / 1000.0
        self.seconds = end_s - self._start_s
        return self.joules

    def _restart(self) -> None:
        """Count from now on (after warm-up calls), keeping NVML open."""
        if self._open is None:
            raise RuntimeError("NvmlEnergyMeter is not started")
        module, handle = self._open
        self._start_mj = module.nvmlDeviceGetTotalEnergyConsumption(handle)
        self._start_s = self._clock()

    def __enter__(self) -> NvmlEnergyMeter:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def measure(
        self, fn: Callable[[], object], repeats: int = 10, warmup: int = 1
    ) -> MeasuredEnergy:
        """Energy and time per call of ``fn``, over ``repeats`` calls after ``warmup`` calls."""
        repeats = check_count("repeats", repeats)
        if repeats == 0:
            raise SimcityError("is 0", field="repeats", expected="at least 1 call")
        self.start()
        try:
            if check_count("warmup", warmup):
                for _ in range(warmup):
                    fn()
                self._restart()
            for _ in range(repeats):
                fn()
        finally:
            joules = self.stop()
        return MeasuredEnergy(
            joules_per_call=joules / repeats,
            seconds_per_call=self.seconds / repeats,
            power_w=joules / self.seconds if self.seconds > 0 else 0.0,
            num_calls=repeats,
            device_name=self.device_name,
        )


def _open_nvml(nvml: Any, device_index: int) -> tuple[Any, Any, str, int]:
    """Initialise NVML: (module, handle, device name, energy counter in mJ), or say why not."""
    if nvml is None:
        try:
            import pynvml
        except ImportError:
            raise SimcityError(
                "pynvml not installed", field="nvml", expected=_NVML_EXPECTED
            ) from None
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
        raise SimcityError(
            f"no NVIDIA GPU found: {err}", field="nvml", expected=_NVML_EXPECTED
        ) from None
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
        name = nvml.nvmlDeviceGetName(handle)
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as err:
        nvml.nvmlShutdown()
        raise SimcityError(
            f"no NVIDIA GPU found: device {device_index}: {err}",
            field="nvml",
            expected=_NVML_EXPECTED,
        ) from None
    try:
        energy_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    except Exception as err:  # NVMLError_NotSupported before Volta
        nvml.nvmlShutdown()
        raise SimcityError(
            f"{name} (device {device_index}) has no energy counter: {err}",
            field="nvml",
            expected=_NVML_EXPECTED,
        ) from None
    return nvml, handle, name, energy_mj


# --- calibration -------------------------------------------------------------------


def calibrate_profile(
    profile: DeviceProfile,
    measured: float | tuple[float, float],
    *,
    seconds: float | None = None,
    name: str | None = None,
) -> DeviceProfile:
    """A copy of ``profile`` whose model reproduces a measured, fully-busy run.

    ``measured`` is joules per FLOP, or ``(joules, flop)`` of a run of back-to-back calls
    on one device (e.g. `NvmlEnergyMeter.measure` times the model's FLOPs per call). In the
    model such a run costs ``max_power_w × flop / (peak_flop_s × utilisation)`` joules.

    - With ``seconds`` (the run's duration), the run *is* the busy state: ``utilisation``
      becomes the measured FLOP/s over the peak and ``max_power_w`` the measured mean
      power (``idle_power_w`` is lowered to it if it was above: a busy board cannot draw
      less than an idle one). Time and energy are both reproduced.
    - Without, powers are kept and ``utilisation`` is solved from the joules per FLOP.

    >>> gpu = DeviceProfile(name="toy", precision="fp16", peak_flop_s=100e12,
    ...                     utilisation=0.5, idle_power_w=10, max_power_w=60)
    >>> calibrate_profile(gpu, 2e-12).utilisation  # 60 W / (100e12 FLOP/s × 2e-12 J/FLOP)
    0.3
    >>> fit = calibrate_profile(gpu, (400.0, 1e15), seconds=20.0)  # 50e12 FLOP/s at 20 W
    >>> fit.utilisation, fit.max_power_w, fit.idle_power_w
    (0.5, 20.0, 10.0)
    """
    changes: dict[str, Any]
    if isinstance(measured, tuple):
        joules = check_positive("measured joules", measured[0])
        flop = check_positive("measured flop", measured[1])
        joules_per_flop = joules / flop
    else:
        joules_per_flop = check_positive("measured joules per flop", measured)
    if seconds is None:
        utilisation = profile.max_power_w / (profile.peak_flop_s * joules_per_flop)
        if utilisation > 1.0:
            raise SimcityError(
                f"{joules_per_flop:.3g} J/FLOP is less than {profile.name} can use at peak "
                f"and {profile.max_power_w} W",
                field="measured",
                expected=f">= {profile.max_power_w / profile.peak_flop_s:.3g} J/FLOP, "
                "or pass (joules, flop) with seconds to fit the power too",
            )
        changes = {"utilisation": utilisation}
        note = f"{joules_per_flop:.3g} J/FLOP"
    else:
        if not isinstance(measured, tuple):
            raise SimcityError(
                "seconds needs the FLOP count", field="measured", expected="(joules, flop)"
            )
        seconds = check_positive("seconds", seconds)
        flop_s = flop / seconds
        power_w = joules / seconds
        if flop_s > profile.peak_flop_s:
            raise SimcityError(
                f"measured {flop_s:.3g} FLOP/s is above {profile.name}'s peak "
                f"{profile.peak_flop_s:.3g} (another precision, or a wrong FLOP count?)",
                field="measured",
                expected=f"<= {profile.peak_flop_s:.3g} FLOP/s",
            )
        changes = {
            "utilisation": flop_s / profile.peak_flop_s,
            "max_power_w": power_w,
            "idle_power_w": min(profile.idle_power_w, power_w),
        }
        note = f"{flop_s:.3g} FLOP/s at {power_w:.3g} W"
    fields = profile.model_dump()
    fields.update(changes)
    fields["name"] = name if name is not None else profile.name
    fields["source"] = f"{profile.source} Calibrated to a measured run: {note}.".strip()
    return DeviceProfile(**fields)
