"""Calibrate a real city's demand: peak travel-time index and day wall time per demand level.

Not a test: prints, for each ``base_trips_veh_h``, the day's peak travel-time index
(total travel time over free-flow travel time, the most congested step) and the seconds
one simulated day takes with no monitoring. Run from the repository root:

    python bench/real_city_demand.py helsinki 6000 12000 18000

Pick the level whose peak index is plausible for the city and write it in its scenario.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from simcity.config.scenario import load_scenario
from simcity.env import CityEnv


def peak_index(name: str, base_trips_veh_h: float | None) -> tuple[float, float, float]:
    """(peak travel-time index, its local hour, seconds for the day)."""
    scenario = load_scenario(name)
    if base_trips_veh_h is not None:
        traffic = scenario.traffic.model_copy(update={"base_trips_veh_h": base_trips_veh_h})
        scenario = scenario.model_copy(update={"traffic": traffic})
    env = CityEnv(scenario)
    start = time.perf_counter()
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    assert env.world is not None
    for _ in range(scenario.time.num_steps):
        env.step(action)
    seconds = time.perf_counter() - start
    records = env.world.view.records
    best = max(records, key=lambda r: r.travel_time_index)
    return best.travel_time_index, best.hour_local, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario")
    parser.add_argument("levels", nargs="*", type=float, help="base_trips_veh_h values")
    args = parser.parse_args()
    for level in args.levels or [None]:
        index, hour, seconds = peak_index(args.scenario, level)
        shown = "scenario's" if level is None else f"{level:,.0f}"
        print(
            f"{args.scenario}: base trips {shown} veh/h: peak travel-time index {index:.3f}"
            f" at {hour:04.1f} h; day {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
