"""Count the re-routings around accident cuts that move no flow (issue 20, item 4).

Not a test: plays days of a scenario with the budget spread evenly over the nodes and
watches every Frank–Wolfe solve the traffic day runs under a capacity cut (memoised ones
are not solved again, so each counts once). A solve "takes no step" when its flows are the
warm start's, bit for bit: the cut links then carry what they carried before the cut.
Run from the repository root (on this branch, or with another checkout on PYTHONPATH to
compare):

    PYTHONPATH=. python bench/incident_resolves.py downtown --days 3
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

import simcity.traffic.day as day_module
from simcity.env import CityEnv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="downtown")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="first day's seed")
    args = parser.parse_args()

    solves: list[tuple[int, bool, float, float]] = []  # (loads, no step, cut flow before/after)
    original = day_module.assign

    def watched(network: Any, od: np.ndarray, **kwargs: Any) -> Any:
        result = original(network, od, **kwargs)
        capacity = kwargs.get("capacity_veh_h")
        if capacity is not None and (capacity < network.capacity_veh_h).any():
            cut = capacity < network.capacity_veh_h
            warm = kwargs["warm_start"]
            still = bool(np.array_equal(result.flows_veh_h, warm))
            before, after = float(warm[cut].sum()), float(result.flows_veh_h[cut].sum())
            solves.append((result.num_iterations, still, before, after))
        return result

    day_module.assign = watched  # type: ignore[assignment]
    env = CityEnv(args.scenario)
    for day in range(args.days):
        env.reset(seed=args.seed + day)
        action = np.ones(env.action_space.shape)
        while True:
            *_, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
    still = sum(1 for s in solves if s[1])
    loaded = [s for s in solves if s[2] > 0]
    dropped = sum(1 for s in loaded if s[3] < s[2])
    loads = np.array([s[0] for s in solves]) if solves else np.zeros(0)
    print(f"{args.scenario}, {args.days} days from seed {args.seed}, uniform allocation")
    print(f"re-routings solved under a cut: {len(solves)}")
    print(f"  with no Frank-Wolfe step (flows = warm start): {still}")
    print(f"  cut links loaded before the cut: {len(loaded)}, their flow dropped: {dropped}")
    if solves:
        print(f"  all-or-nothing loads per solve: mean {loads.mean():.2f}, max {loads.max()}")


if __name__ == "__main__":
    main()
