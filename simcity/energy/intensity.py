"""A scenario's grid carbon intensity through its episode: constant, daily curve or trace."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from simcity.config.scenario import (
    BUNDLED_TRACES,
    CarbonConfig,
    ConstantCarbon,
    DailyCarbon,
    Scenario,
)
from simcity.energy import carbon


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

    >>> from simcity.config.scenario import load_scenario
    >>> carbon_intensity(load_scenario("tiny"), np.array([0.0, 60.0])).tolist()
    [350.0, 350.0]
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
