"""Memory of the traffic day's cut cache: bytes per entry and the process's peak RSS.

Not a test: plays ``--days`` days of a scenario (default ``metro``) under the uniform
policy in one env (seeds 0, 1, ...) and prints, after each day, the re-routings cached,
their bytes, bytes per entry, what the same entries took as whole arrays (a key, flows
and times of L float64 each: the layout before issue 21), and the peak RSS. Run from the
repository root:

    python bench/cut_cache.py --days 200 [--scenario metro]

The budget is `simcity.traffic.day.CUT_CACHE_ENV` (megabytes) or its default.
"""

from __future__ import annotations

import argparse
import resource
import time

from agents.policies.baselines import make_baseline
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv
from simcity.traffic.day import _DAYS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--scenario", default="metro")
    args = parser.parse_args()
    env = CityEnv(load_scenario(args.scenario))
    policy = make_baseline("uniform", env, seed=0)
    start = time.perf_counter()
    print("day  seconds  entries  cache_MB  bytes/entry  whole-array bytes/entry  peak_RSS_MB")
    for seed in range(args.days):
        obs, _ = env.reset(seed=seed)
        policy.reset(seed)
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            done = terminated or truncated
        (day,) = (d for days in _DAYS.values() for d in days.values())
        links = len(day.network.tail)
        per_entry = day.cached_bytes / max(day.num_cached, 1)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{seed + 1:3d}  {time.perf_counter() - start:7.0f}  {day.num_cached:7d}  "
            f"{day.cached_bytes / 1e6:8.2f}  {per_entry:11.0f}  {3 * links * 8:23d}  "
            f"{peak_mb:11.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
