"""Does the pretrained generalist beat uniform on generated cities it never saw?

Not a test: prints a table. Run from the repository root:

    python bench/generalist_sanity.py [--checkpoint agents/data/generalist.pt] [--cities 3]

Cities are drawn by `agents.training.generalist.sample_city` from generators seeded
``2**33 + j`` (the training run draws from ``[seed, 0x6E4E]``, so these are other cities;
the script checks their names against the checkpoint's sidecar ``generalist.json`` when
there is one), and every policy plays the same validation days ``2**33 + k``, k < --days
(never training days, which are 32-bit hashes, nor the held-out test days ``2**32 + k``).
Prints each policy's total cost a day (mean and 95% interval over the days) and the
generalist's cost as a ratio to uniform's and to posterior's (below 1: cheaper).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from agents.policies.baselines import make_baseline
from agents.policies.compressed import load_policy
from agents.policies.protocol import Policy
from agents.training.evaluate import compare_policies
from agents.training.generalist import sample_city
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv

VALIDATION_BASE = 2**33


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("agents/data/generalist.pt"))
    parser.add_argument("--cities", type=int, default=3)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--max-nodes", type=int, default=250)
    args = parser.parse_args()
    sidecar = args.checkpoint.with_suffix(".json")
    if not sidecar.is_file():
        sidecar = args.checkpoint.parent / "generalist.json"
    trained_on: set[str] = set()
    if sidecar.is_file():
        trained_on = {c["scenario"] for c in json.loads(sidecar.read_text())["cities"]}
    days = [VALIDATION_BASE + k for k in range(args.days)]
    base = load_scenario("tiny")
    ratios: dict[str, list[float]] = {"uniform": [], "posterior": []}
    for j in range(args.cities):
        scenario = sample_city(
            np.random.default_rng(VALIDATION_BASE + j), base, max_nodes=args.max_nodes
        )
        assert scenario.name not in trained_on, scenario.name
        env = CityEnv(scenario)
        players: list[Policy] = [load_policy(args.checkpoint, env, name="pretrained")]
        players += [make_baseline(name, env, seed=0) for name in ("uniform", "posterior")]
        table = compare_policies(env, players, days)
        money = {name: table[name]["money"] for name in table}
        print(f"{scenario.name} ({env.city.num_nodes} nodes, {scenario.carbon.source} carbon)")
        for name, stats in money.items():
            print(f"  {name:10s} ${stats['mean']:>12,.0f} +- {stats['ci95']:,.0f} a day")
        pre = money["pretrained"]["mean"]
        for name in ("uniform", "posterior"):
            ratios[name].append(pre / money[name]["mean"])
            print(f"  pretrained / {name}: {ratios[name][-1]:.3f}")
    for name, values in ratios.items():
        mean = float(np.exp(np.mean(np.log(values))))
        print(f"pretrained / {name}, geometric mean over {args.cities} cities: {mean:.3f}")


if __name__ == "__main__":
    main()
