"""How a step's time and memory grow with the city: 100 to 30,000 nodes.

Not a test: prints a table. Run from the repository root (after ``pip install -e '.[dev]'``):

    python bench/scale.py [--sizes 100 1000 10000 30000] [--steps 4] [--start-hour 8]

Each size runs in a fresh process (so peak memory is its own): the bundled ``metro``
scenario (a random geometric street web) scaled to N nodes at metro's density (radius
grows with sqrt(N)), people, jobs and trips in proportion, traffic zones 20% of nodes
capped at 500 (planning models of big cities use a few thousand at most). After a reset
at ``--start-hour`` (08:00: the morning peak, the costliest assignment) it times
``--steps`` env steps of the first episode (cold: every step solves its traffic
equilibrium; later episodes reuse the memoised day) and the attention policy's decision
(untrained, default shape, torch threads 1). Peak memory is the process's max RSS.
The growth exponent is the slope of log(step + decision time) against log(N), fitted
over the sizes from 1,000 up. Issue 7's targets: step + decision under 1 s at 10,000
nodes on 2 cores, exponent at most 1.2, under 4 GB at 10,000 nodes.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import resource
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message=".*blank value")


def measure(size: int, steps: int, start_hour: float) -> dict[str, float]:
    """Build, reset and step a ``size``-node metro in this process; time and memory."""
    import torch

    from agents.attention import AttentionConfig, AttentionPolicy
    from agents.checkpoint import city_neighbours
    from simcity.env import CityEnv
    from simcity.overrides import override_scenario
    from simcity.scenario import load_scenario

    torch.set_num_threads(1)
    base = load_scenario("metro")
    scale = size / base.city.num_nodes  # type: ignore[union-attr]
    scenario = override_scenario(
        base,
        [
            ("city.num_nodes", size),
            ("city.radius_km", 12.0 * math.sqrt(scale)),
            ("city.cbd_km", 4.0 * math.sqrt(scale)),
            ("city.population", 900_000 * scale),
            ("city.jobs", 700_000 * scale),
            ("city.zone_share", min(0.2, 500 / size)),
            ("traffic.base_trips_veh_h", 45_000 * scale),
            ("time.start_hour", start_hour),
            ("time.num_steps", steps + 1),
        ],
    )
    started = time.perf_counter()
    env = CityEnv(scenario)
    build_s = time.perf_counter() - started
    policy = AttentionPolicy(AttentionConfig()).eval()
    neighbours, distances = city_neighbours(env.city, policy.config.num_neighbours)
    obs, _ = env.reset(seed=0)
    step_s, decide_s = [], []
    for _ in range(steps):
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
        obs, *_ = env.step(action)
        step_s.append(time.perf_counter() - started)
    return {
        "nodes": env.city.num_nodes,
        "links": env.city.num_links,
        "zones": env.city.num_zones,
        "build_s": build_s,
        "step_s": float(np.mean(step_s)),
        "decide_s": float(np.mean(decide_s)),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def _run(args: tuple[int, int, float]) -> dict[str, float]:
    return measure(*args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10_000, 30_000])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--start-hour", type=float, default=8.0)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    rows = []
    print(
        f"{'nodes':>7} {'links':>7} {'zones':>6} {'build s':>8} {'step s':>8} "
        f"{'decide s':>9} {'peak GB':>8}"
    )
    for size in args.sizes:
        with context.Pool(1) as pool:  # a fresh process per size: its own peak memory
            row = pool.apply(_run, ((size, args.steps, args.start_hour),))
        rows.append(row)
        print(
            f"{row['nodes']:>7} {row['links']:>7} {row['zones']:>6} {row['build_s']:>8.2f} "
            f"{row['step_s']:>8.3f} {row['decide_s']:>9.4f} {row['peak_rss_gb']:>8.2f}",
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
