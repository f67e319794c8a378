"""Every baseline on common seeds: service, error, compute, money and reward, with 95% intervals.

Not a test: prints a table. Run from the repository root (after ``pip install -e .``, or
with ``PYTHONPATH=.``):

    python bench/compare_baselines.py [--scenario downtown] [--seeds 20] [--processes 2]
                                      [--split validation|test]

Seeds (`agents.training.seeds`): ``--split validation`` (the default, ``2**33 + k``) for
every choice made from the table (a gain, a setting, which rule to keep); ``--split test``
(``2**32 + k``) only for the final reported comparison, after the choices.

Episode k of every policy uses the split's k-th seed (common random numbers: the
same seed gives the same sensor, arrival and detection streams, so paired differences
are much tighter than the intervals of the means). Each (policy, seed) episode runs in a
worker process; results do not depend on which worker ran what (`simcity.traffic.day.TrafficDay`
is a pure function of step and capacity). Intervals are Student-t 95% half-widths.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from agents.policies.baselines import BASELINES, make_baseline
from agents.training.evaluate import KPIS, mean_ci, run_episode
from agents.training.seeds import split_seeds
from simcity.env import CityEnv

_ENVS: dict[str, CityEnv] = {}
"""One env per scenario per worker, so its traffic cache outlives an episode."""


class Job(NamedTuple):
    """One episode to run."""

    scenario: str
    policy: str
    seed: int


class Result(NamedTuple):
    """One episode's summary and its wall time."""

    job: Job
    summary: dict[str, float]
    wall_s: float


def run_job(job: Job) -> Result:
    """Play one episode in this worker (policy seed 0; env seed from the job)."""
    warnings.filterwarnings("ignore", message=".*blank value")
    env = _ENVS.get(job.scenario)
    if env is None:
        env = _ENVS[job.scenario] = CityEnv(job.scenario)
    policy = make_baseline(job.policy, env, seed=0)
    start = time.perf_counter()
    episode = run_episode(env, policy, job.seed)
    return Result(job, episode.summary, time.perf_counter() - start)


def cell(values: Sequence[float]) -> str:
    """``mean ± half-width`` with 4 significant digits."""
    mean, half = mean_ci(values)
    half = 0.0 if half <= 1e-9 * abs(mean) else half  # rounding noise of a constant
    return f"{mean:.4g} ± {half:.2g}"


def main() -> None:
    """Run the episodes, print the table, the paired damage differences and the ordering."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="downtown")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--split",
        choices=("validation", "test"),
        default="validation",
        help="validation: days to choose on; test: days for the final report only",
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--policies", default=",".join(BASELINES))
    parser.add_argument("--paired-with", default="random", help="Policy to pair days with.")
    args = parser.parse_args()
    policies = args.policies.split(",")
    seeds = split_seeds(args.split, args.seeds)
    # Seeds in the outer loop, so that both workers stay busy to the end.
    jobs = [Job(args.scenario, p, s) for s in seeds for p in policies]
    start = time.perf_counter()
    with multiprocessing.Pool(args.processes) as pool:
        results = list(pool.imap_unordered(run_job, jobs, chunksize=1))
    wall_s = time.perf_counter() - start
    by_policy = {
        p: sorted((r for r in results if r.job.policy == p), key=lambda r: r.job.seed)
        for p in policies
    }

    print(
        f"{args.scenario}: {len(policies)} policies x {args.seeds} seeds "
        f"({args.split}: {seeds[0]}..{seeds[-1]}), one day each, {args.processes} processes, "
        f"{wall_s:.0f} s wall; mean ± 95% interval"
    )
    headers = ["policy", *(label for _, label in KPIS), "s/episode"]
    rows = [
        [
            p,
            *(cell([r.summary[key] for r in by_policy[p]]) for key, _ in KPIS),
            f"{np.mean([r.wall_s for r in by_policy[p]]):.2f}",
        ]
        for p in policies
    ]
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))

    money = {p: np.array([r.summary["money"] for r in by_policy[p]]) for p in policies}
    if "uniform" in money and "clairvoyant" in money:
        gap = float(money["uniform"].mean() - money["clairvoyant"].mean())
        note = "" if gap > 0 else " (the clairvoyant reference costs no less than uniform: no gap)"
        print(f"\nmean total cost a day and share of the uniform-to-clairvoyant gap closed{note}:")
        for p in sorted(policies, key=lambda p: float(money[p].mean())):
            closed = (money["uniform"].mean() - money[p].mean()) / gap if gap else float("nan")
            print(f"  {p:>12}: {money[p].mean():,.0f}  {100.0 * closed:5.1f}%")

    damage = {p: np.array([r.summary["damage"] for r in by_policy[p]]) for p in policies}
    base = args.paired_with
    if base in damage:
        print(f"\npaired difference vs {base} (same seeds), mean ± 95% interval:")
        print(f"  {'policy':>12}  {'damage $':>18}  {'total cost $':>18}")
        for p in policies:
            if p != base:
                print(
                    f"  {p:>12}  {cell(damage[p] - damage[base]):>18}  "
                    f"{cell(money[p] - money[base]):>18}"
                )
    heuristics = [p for p in policies if p not in ("random", "clairvoyant")]
    if "random" in damage and "clairvoyant" in damage and heuristics:
        mean = {p: float(d.mean()) for p, d in damage.items()}
        below_random = all(mean[p] < mean["random"] for p in heuristics)
        clairvoyant_best = all(mean["clairvoyant"] < mean[p] for p in heuristics)
        print(
            f"\nmean damage: clairvoyant < every heuristic: {clairvoyant_best}; "
            f"every heuristic < random: {below_random}; "
            f"clairvoyant < every heuristic < random: {clairvoyant_best and below_random}"
        )
        for p in sorted(mean, key=mean.__getitem__):
            print(f"  {p:>10}: {mean[p]:,.0f}")


if __name__ == "__main__":
    main()
