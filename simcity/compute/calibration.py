"""A device profile fitted to a measured run (`calibrate_profile`).

Measuring itself (NVML, RAPL, latency x a stated power) is `simcity.compute.measure`.
"""

from __future__ import annotations

from typing import Any

from simcity.config.devices import DeviceProfile, check_positive
from simcity.errors import SimcityError


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
    fields["provenance"] = "calibrated"
    return DeviceProfile(**fields)
