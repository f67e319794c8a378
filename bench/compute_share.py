"""Compute's share of the day's cost in every bundled scenario (issue 18's figure (b)).

Not a test: plays one day of each bundled scenario under the ``posterior`` heuristic (the
best observation-only rule) on the same validation seed (the first of
`agents.training.seeds.validation_seeds`: a measurement of the bill, no final comparison)
and prints the compute bill (energy cost + carbon cost x carbon weight) against the day's
whole cost (damage + estimation error + compute), with the compute kWh and kgCO2 and the
provenance of the figures billed. Run from the repository root: ``python bench/compute_share.py``.
"""

from __future__ import annotations

import argparse
import time
import warnings

warnings.filterwarnings("ignore", message=".*blank value")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="posterior")
    parser.add_argument("--skip", nargs="*", default=[], help="Scenarios to leave out.")
    args = parser.parse_args()

    from agents.policies.baselines import make_baseline
    from agents.training.evaluate import run_episode
    from agents.training.seeds import validation_seeds
    from simcity.config.scenario import bundled_scenarios
    from simcity.env import CityEnv

    print(
        f"{'scenario':22s} {'compute $':>10s} {'day $':>12s} {'share':>9s} "
        f"{'kWh':>9s} {'kgCO2':>8s}  source     s"
    )
    seed = validation_seeds(1)[0]
    for name in bundled_scenarios():
        if name in args.skip:
            continue
        started = time.perf_counter()
        env = CityEnv(name)
        episode = run_episode(env, make_baseline(args.policy, env), seed)
        compute = sum(i["cost_energy"] + i["cost_carbon"] for i in episode.infos)
        total = sum(i["cost_total"] for i in episode.infos)
        s = episode.summary
        source = episode.infos[-1]["compute_source"]
        print(
            f"{name:22s} {compute:10.2f} {total:12,.0f} {compute / total:9.4%} "
            f"{s['compute_kwh']:9.2f} {s['compute_kgco2']:8.3f}  {source:9s} "
            f"{time.perf_counter() - started:5.0f}"
        )


if __name__ == "__main__":
    main()
