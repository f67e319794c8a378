"""Choose the ``whittle`` baseline's fill (by index, or a cap a node per round) on validation seeds.

Not a test: prints the mean total cost a day of each cap, and the paired difference from the
posterior baseline (common random numbers), on validation seeds
(`agents.training.seeds.validation_seeds`: a choice, so never a test day). Run from the
repository root:

    python bench/whittle_cap.py [--scenario downtown] [--seeds 20]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from agents.policies.baselines import make_baseline
from agents.policies.classical import ClassicalPolicy
from agents.policies.protocol import Policy
from agents.training.evaluate import mean_ci, run_episode
from agents.training.seeds import validation_seeds
from simcity.env import CityEnv


def main() -> None:
    """Play the posterior baseline and each cap on the same seeds; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="downtown")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--caps", default="water,0.25,0.5,1,2", help="'water': by index")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*blank value")
    env = CityEnv(args.scenario)
    seeds = validation_seeds(args.seeds)
    whittle = make_baseline("whittle", env)
    assert isinstance(whittle, ClassicalPolicy)

    def costs(policy: Policy) -> np.ndarray:
        return np.array([run_episode(env, policy, s).summary["money"] for s in seeds])

    posterior = costs(make_baseline("posterior", env))
    print(f"{args.scenario}, validation seeds {seeds[0]}..{seeds[-1]}: mean total cost a day")
    print(f"  posterior: {posterior.mean():,.0f}")
    for cap in (None if c == "water" else float(c) for c in args.caps.split(",")):
        whittle.whittle_cap_units = cap
        cost = costs(whittle)
        mean, half = mean_ci(cost - posterior)
        print(
            f"  whittle {'by index' if cap is None else f'cap {cap:g}'}: {cost.mean():,.0f} "
            f"(vs posterior {mean:+,.0f} ± {half:,.0f})"
        )


if __name__ == "__main__":
    main()
