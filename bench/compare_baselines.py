"""Every baseline on common seeds: service, error, compute, money and reward, with 95% intervals.

Not a test: prints a table. Run from the repository root (after ``pip install -e .``, or
with ``PYTHONPATH=.``):

    python bench/compare_baselines.py [--scenario downtown] [--seeds 20] [--processes 2]

Validation seeds (every choice of a setting): ``--first-seed 500 --seeds 20``; the test
seeds are `agents.training.evaluate.held_out_seeds`, for the report only.

Episode k of every policy uses env seed ``first_seed + k`` (common random numbers: the
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
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--policies", default=",".join(BASELINES))
    args = parser.parse_args()
    policies = args.policies.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
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
        f"({seeds.start}..{seeds.stop - 1}), one day each, {args.processes} processes, "
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
    if "uniform" in money and "oracle" in money:
        gap = float(money["uniform"].mean() - money["oracle"].mean())
        note = "" if gap > 0 else " (the oracle costs no less than uniform here: no gap)"
        print(f"\nmean total cost a day and share of the uniform-to-oracle gap closed{note}:")
        for p in sorted(policies, key=lambda p: float(money[p].mean())):
            closed = (money["uniform"].mean() - money[p].mean()) / gap if gap else float("nan")
            print(f"  {p:>12}: {money[p].mean():,.0f}  {100.0 * closed:5.1f}%")

    damage = {p: np.array([r.summary["damage"] for r in by_policy[p]]) for p in policies}
    if "random" in damage:
        print("\npaired damage difference vs random (same seeds), mean ± 95% interval:")
        for p in policies:
            if p != "random":
                print(f"  {p:>10}: {cell(damage[p] - damage['random'])}")
    heuristics = [p for p in policies if p not in ("random", "oracle")]
    if "random" in damage and "oracle" in damage and heuristics:
        mean = {p: float(d.mean()) for p, d in damage.items()}
        below_random = all(mean[p] < mean["random"] for p in heuristics)
        oracle_best = all(mean["oracle"] < mean[p] for p in heuristics)
        print(
            f"\nmean damage: oracle < every heuristic: {oracle_best}; "
            f"every heuristic < random: {below_random}; "
            f"oracle < every heuristic < random: {oracle_best and below_random}"
        )
        for p in sorted(mean, key=mean.__getitem__):
            print(f"  {p:>10}: {mean[p]:,.0f}")


if __name__ == "__main__":
    main()
