"""How a step's time and memory grow with the city: 100 to 30,000 nodes.

Not a test: prints a table. Run from the repository root (after ``pip install -e '.[dev]'``):

    python bench/scale.py [--sizes 100 1000 10000 30000] [--hours 24]

Each size runs in a fresh process (so peak memory is its own): the bundled ``metro_xl``
scenario (10,000 nodes on a random geometric street web; hourly traffic solves to a 1%
gap, searches on two threads) scaled to N nodes at the same density (radius grows with sqrt(N)),
people, jobs and trips in proportion. Traffic zones, the planning model's resolution, are
min(500, N / 2) at every size: with zones in proportion to nodes the OD matrix alone
grows as N^2. It times one cold episode of ``--hours`` from midnight (every traffic solve
is new: later episodes reuse the memoised day) and the attention policy's decision
(untrained, default shape, torch threads 1) on each step's observation. Peak memory is
the max RSS of the process. The growth exponent is the
slope of log(mean step + decision) against log(N), fitted from 1,000 nodes up.
Issue 7's targets: step + decision under 1 s at 10,000 nodes on 2 cores, exponent at
most 1.2, under 4 GB at 10,000 nodes.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import resource
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

warnings.filterwarnings("ignore", message=".*blank value")


def measure(size: int, hours: float) -> dict[str, float]:
    """Build, reset and run a ``size``-node city for ``hours`` in this process."""
    import torch

    from agents.policies.attention import AttentionConfig, AttentionPolicy
    from agents.policies.checkpoint import city_neighbours
    from simcity.config.overrides import override_scenario
    from simcity.config.scenario import load_scenario
    from simcity.env import CityEnv

    torch.set_num_threads(1)
    base = load_scenario("metro_xl")
    scale = size / base.city.num_nodes  # type: ignore[union-attr]
    scenario = override_scenario(
        base,
        [
            ("city.num_nodes", size),
            ("city.radius_km", base.city.radius_km * math.sqrt(scale)),  # type: ignore[union-attr]
            ("city.cbd_km", base.city.cbd_km * math.sqrt(scale)),  # type: ignore[union-attr]
            ("city.population", base.city.population * scale),  # type: ignore[union-attr]
            ("city.jobs", base.city.jobs * scale),  # type: ignore[union-attr]
            ("city.zone_share", min(500, size // 2) / size),
            ("traffic.base_trips_veh_h", base.traffic.base_trips_veh_h * scale),
            ("time.start_hour", 0.0),
            ("time.num_steps", round(hours * 60 / base.time.dt_min)),
        ],
    )
    started = time.perf_counter()
    env = CityEnv(scenario)
    build_s = time.perf_counter() - started
    policy = AttentionPolicy(AttentionConfig()).eval()
    neighbours, distances = city_neighbours(env.city, policy.config.num_neighbours)
    obs, _ = env.reset(seed=0)
    step_s, decide_s = [], []
    done = False
    while not done:
        started = time.perf_counter()
        with torch.no_grad():
            output = policy(
                torch.as_tensor(obs["nodes"]).unsqueeze(0),
                torch.as_tensor(obs["globals"]).unsqueeze(0),
                neighbours,
                distances,
            )
        action = torch.softmax(output.logits[0], dim=-1).numpy().astype(np.float64)
        decide_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        step_s.append(time.perf_counter() - started)
        done = terminated or truncated
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "nodes": env.city.num_nodes,
        "links": env.city.num_links,
        "zones": env.city.num_zones,
        "build_s": build_s,
        "step_s": float(np.mean(step_s)),
        "max_step_s": float(np.max(step_s)),
        "decide_s": float(np.mean(decide_s)),
        "peak_rss_gb": peak_kb / 1024**2,
    }


def _run(args: tuple[int, float]) -> dict[str, float]:
    return measure(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 30_000])
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    rows = []
    print(
        f"{'nodes':>7} {'links':>7} {'zones':>6} {'build s':>8} {'step s':>8} "
        f"{'max step':>9} {'decide s':>9} {'peak GB':>8}"
    )
    for size in args.sizes:
        # A fresh process per size: its own peak memory.
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            row = pool.submit(_run, (size, args.hours)).result()
        rows.append(row)
        print(
            f"{row['nodes']:>7} {row['links']:>7} {row['zones']:>6} {row['build_s']:>8.2f} "
            f"{row['step_s']:>8.3f} {row['max_step_s']:>9.2f} {row['decide_s']:>9.4f} "
            f"{row['peak_rss_gb']:>8.2f}",
            flush=True,
        )
    big = [r for r in rows if r["nodes"] >= 1000]
    if len(big) >= 2:
        x = np.log([r["nodes"] for r in big])
        y = np.log([r["step_s"] + r["decide_s"] for r in big])
        slope = float(np.polyfit(x, y, 1)[0])
        print(f"growth exponent of step + decision, {int(min(np.exp(x)))}+ nodes: {slope:.2f}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
