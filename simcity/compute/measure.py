"""Measured energy: NVML's GPU energy counter and RAPL's CPU package counters around real
calls, latency x a stated power where neither can be read, and calibrated profiles.

Where the package nvidia-ml-py and an NVIDIA GPU are present, `NvmlEnergyMeter` reads the
board's joules; where Linux exposes Intel/AMD RAPL counters readably under
``/sys/class/powercap``, `RaplEnergyMeter` reads the CPU packages' joules. Each says why it
cannot measure otherwise, and `latency_energy` turns a measured time and a stated power into
joules that say so. `calibrate_profile` (`simcity.compute.calibration`, re-exported here)
fits a `DeviceProfile` to a measured run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from simcity.compute.calibration import calibrate_profile
from simcity.config.devices import Provenance, check_count, check_nonnegative
from simcity.errors import SimcityError

__all__ = [
    "POWERCAP",
    "EnergyEstimate",
    "MeasuredEnergy",
    "NvmlEnergyMeter",
    "RaplDomain",
    "RaplEnergyMeter",
    "calibrate_profile",
    "latency_energy",
    "rapl_packages",
]

POWERCAP = Path("/sys/class/powercap")
"""Where Linux's powercap driver exposes RAPL (read when a `RaplEnergyMeter` starts)."""


class MeasuredEnergy(NamedTuple):
    """Energy and time of one call, averaged over ``num_calls`` back-to-back calls."""

    joules_per_call: float  # whole-board (or whole-package) energy, idle draw included
    seconds_per_call: float
    power_w: float  # mean board (or package) power over the calls
    num_calls: int
    device_name: str


class EnergyEstimate(NamedTuple):
    """Joules of one call as time x power, with where each figure comes from."""

    joules: float
    seconds: float
    power_w: float
    provenance: Provenance  # measured: both measured here; calibrated: time measured only
    basis: str  # e.g. "1.5 ms measured x 3 W stated (...)"


def latency_energy(
    seconds: float, power_w: float, *, power_source: str, power_measured: bool = False
) -> EnergyEstimate:
    """Joules of a call lasting ``seconds`` (measured) at ``power_w`` above idle.

    ``power_source`` says where the power comes from. With a power read from a counter
    (``power_measured``) both figures are measured here; with a stated power only the time
    is, so the estimate is "calibrated": a measured time on a stated power.

    >>> e = latency_energy(2e-3, 4.0, power_source="TDP per core")
    >>> e.joules, e.provenance, e.basis
    (0.008, 'calibrated', '2 ms measured x 4 W stated (TDP per core)')
    """
    seconds = check_nonnegative("seconds", seconds)
    power_w = check_nonnegative("power_w", power_w)
    kind = "measured" if power_measured else "stated"
    return EnergyEstimate(
        joules=seconds * power_w,
        seconds=seconds,
        power_w=power_w,
        provenance="measured" if power_measured else "calibrated",
        basis=f"{seconds * 1e3:.4g} ms measured x {power_w:.4g} W {kind} ({power_source})",
    )


class _CounterMeter:
    """Joules between `start` and `stop` from an energy counter that subclasses open, read
    and close; ``with meter: ...`` then ``meter.joules`` and ``meter.seconds``, or `measure`."""

    _name = "meter"

    def __init__(self, clock: Callable[[], float]) -> None:
        self.device_name = ""
        self.joules = 0.0
        self.seconds = 0.0
        self._clock = clock
        self._started = False
        self._start: Any = None
        self._start_s = 0.0

    def _open(self) -> Any:
        """Open the counter (or raise `SimcityError` saying why not); its first reading."""
        raise NotImplementedError

    def _read(self) -> Any:
        raise NotImplementedError

    def _close(self) -> None:
        """Release what `_open` took (called once per successful `_open`)."""

    def _joules(self, start: Any, end: Any) -> float:
        raise NotImplementedError

    def start(self) -> None:
        """Start counting; raises `SimcityError` saying why the counter cannot be read."""
        if self._started:
            raise RuntimeError(f"{self._name}.start() called twice without stop()")
        self._start = self._open()
        self._start_s = self._clock()
        self._started = True

    def stop(self) -> float:
        """Joules drawn since `start` (also kept in ``joules``, the time in ``seconds``)."""
        if not self._started:
            raise RuntimeError(f"{self._name}.stop() called before start()")
        try:
            end = self._read()
            end_s = self._clock()
        finally:
            self._started = False
            self._close()
        self.joules = self._joules(self._start, end)
        self.seconds = end_s - self._start_s
        return self.joules

    def _restart(self) -> None:
        """Count from now on (after warm-up calls), keeping the counter open."""
        if not self._started:
            raise RuntimeError(f"{self._name} is not started")
        self._start = self._read()
        self._start_s = self._clock()

    def __enter__(self) -> Any:
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


_NVML_EXPECTED = "package nvidia-ml-py installed and an NVIDIA GPU, Volta or newer"


class NvmlEnergyMeter(_CounterMeter):
    """Joules a GPU draws between `start` and `stop`, from NVML's board energy counter.

    The counter (``nvmlDeviceGetTotalEnergyConsumption``: millijoules since the driver
    loaded, Volta or newer) covers the whole board, so readings include idle draw and any
    other process on that GPU. The driver updates it at intervals of tens to hundreds of
    milliseconds, from sampled power on some GPUs: measure for a second or more (raise
    ``repeats``). The function measured must wait for its GPU work to finish (e.g.
    ``torch.cuda.synchronize()``) or the energy lands after `stop`.

    ``nvml`` is the NVML module (``pynvml``, imported when first needed if None); tests pass
    a stand-in. ``clock`` gives seconds.
    """

    _name = "NvmlEnergyMeter"

    def __init__(
        self,
        device_index: int = 0,
        *,
        nvml: Any = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(clock)
        self.device_index = check_count("device_index", device_index)
        self._nvml = nvml
        self._module: Any = None
        self._handle: Any = None

    @staticmethod
    def available(device_index: int = 0, *, nvml: Any = None) -> tuple[bool, str]:
        """Whether energy can be measured here, and why not (or which GPU) as text."""
        try:
            module, _handle, name, _mj = _open_nvml(nvml, device_index)
        except SimcityError as err:
            return False, err.message
        module.nvmlShutdown()
        return True, f"{name} (device {device_index})"

    def _open(self) -> int:
        self._module, self._handle, self.device_name, energy_mj = _open_nvml(
            self._nvml, self.device_index
        )
        return energy_mj

    def _read(self) -> int:
        return int(self._module.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    def _close(self) -> None:
        self._module.nvmlShutdown()

    def _joules(self, start: int, end: int) -> float:
        return (end - start) / 1000.0


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


_RAPL_EXPECTED = (
    "Linux with RAPL package counters readable under /sys/class/powercap (energy_uj is "
    "root-only since Linux 5.10: run as root or make it readable)"
)


class RaplDomain(NamedTuple):
    """One RAPL package domain: its sysfs folder, name and counter range."""

    path: Path  # e.g. /sys/class/powercap/intel-rapl:0
    name: str  # e.g. "package-0"
    max_energy_range_uj: int  # the counter wraps to 0 past this


class RaplEnergyMeter(_CounterMeter):
    """Joules the CPU packages draw between `start` and `stop`, from RAPL's counters.

    Reads ``energy_uj`` (microjoules) of every package domain
    (``intel-rapl:N/name == "package-N"``; AMD's RAPL is exposed under the same names; core,
    uncore and DRAM subdomains are left out, being inside the package or not CPU) and sums
    them. A counter that went past ``max_energy_range_uj`` wrapped to 0 once: that is added
    back (tens of minutes apart at hundreds of watts; a longer gap would be undercounted).
    Readings cover the whole packages: idle draw and every other process on them included.
    Virtual machines rarely expose RAPL, and ``energy_uj`` is root-only since Linux 5.10.

    ``root`` is the powercap folder (`POWERCAP` when None; tests pass a fake tree).
    """

    _name = "RaplEnergyMeter"

    def __init__(
        self, root: str | Path | None = None, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__(clock)
        self.root = None if root is None else Path(root)
        self.domains: list[RaplDomain] = []

    @staticmethod
    def available(root: str | Path | None = None) -> tuple[bool, str]:
        """Whether energy can be read here, and why not (or which packages) as text."""
        try:
            domains = rapl_packages(root)
        except SimcityError as err:
            return False, err.message
        return True, "RAPL " + ", ".join(d.name for d in domains)

    def _open(self) -> tuple[int, ...]:
        self.domains = rapl_packages(self.root)
        self.device_name = "RAPL " + ", ".join(d.name for d in self.domains)
        return self._read()

    def _read(self) -> tuple[int, ...]:
        return tuple(_read_uj(d.path / "energy_uj") for d in self.domains)

    def _joules(self, start: tuple[int, ...], end: tuple[int, ...]) -> float:
        total_uj = 0
        for domain, a, b in zip(self.domains, start, end, strict=True):
            total_uj += b - a if b >= a else domain.max_energy_range_uj - a + b
        return total_uj / 1e6


def rapl_packages(root: str | Path | None = None) -> list[RaplDomain]:
    """The RAPL package domains under ``root``, each read once; or say why they cannot be."""
    folder = Path(root) if root is not None else POWERCAP
    if not folder.is_dir():
        raise SimcityError(
            f"RAPL not present: no {folder} (no powercap driver, or a VM that hides it)",
            field="rapl",
            expected=_RAPL_EXPECTED,
        )
    zones = [z for z in folder.iterdir() if re.fullmatch(r"intel-rapl:\d+", z.name)]
    domains = []
    for zone in sorted(zones, key=lambda z: int(z.name.split(":")[1])):
        try:
            name = (zone / "name").read_text().strip()
        except OSError:
            continue
        if name.startswith("package"):
            max_uj = _read_uj(zone / "max_energy_range_uj")
            _read_uj(zone / "energy_uj")
            domains.append(RaplDomain(zone, name, max_uj))
    if not domains:
        raise SimcityError(
            f"RAPL not present: no package domain (intel-rapl:N named package-N) in {folder}",
            field="rapl",
            expected=_RAPL_EXPECTED,
        )
    return domains


def _read_uj(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except PermissionError:
        raise SimcityError(
            f"RAPL not readable: {path}: permission denied", field="rapl", expected=_RAPL_EXPECTED
        ) from None
    except (OSError, ValueError) as err:
        raise SimcityError(
            f"RAPL not readable: {path}: {err}", field="rapl", expected=_RAPL_EXPECTED
        ) from None
