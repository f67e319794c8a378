"""How `agents.references.sb3.tuned_sb3_config` was chosen: settings on validation days.

    python -m agents.references.sb3_tuning [--scenario downtown] [--steps 10240]
                                           [--out DIR] [SETTING ...]

Each setting (`SETTINGS`: the chosen config with one change) trains tuned SB3 PPO for
``--steps`` env steps (seed 0), then plays the 10 validation days ``2**33 + k`` with the
uniform baseline on the same days (common random numbers); it prints each one's total
cost per day (mean and 95% interval) and the paired difference to uniform, and appends a
JSON line per setting to ``DIR/tuning.jsonl``. Validation days only: the test days are for
final reports.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS: dict[str, dict[str, Any]] = {
    "chosen": {},
    "gamma_0.99": {"gamma": 0.99},
    "lr_1e-3": {"learning_rate": 1e-3},
    "log_std_-2": {"log_std_init": -2.0},
}
# agents/training/seeds.py (validation_seeds()) is coming in another branch; the same days.
VALIDATION_SEEDS = tuple(2**33 + k for k in range(10))


def main() -> None:
    import torch

    from agents.policies.baselines import make_baseline
    from agents.references.sb3 import SB3Policy, train_sb3, tuned_sb3_config
    from agents.training.evaluate import mean_ci, run_episode
    from simcity.env import CityEnv

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--scenario", default="downtown")
    parser.add_argument("--steps", type=int, default=10_240)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    out = Path(args.out or tempfile.mkdtemp(prefix="simcity-sb3-tuning-"))
    out.mkdir(parents=True, exist_ok=True)
    env = CityEnv(args.scenario)

    def play(policy: Any) -> np.ndarray:
        return np.array([run_episode(env, policy, s).summary["money"] for s in VALIDATION_SEEDS])

    uniform = play(make_baseline("uniform", env))
    print(
        f"uniform     {mean_ci(uniform.tolist())[0]:10,.0f} +- {mean_ci(uniform.tolist())[1]:7,.0f}"
    )
    for name in args.settings:
        run_dir = out / name
        stats = train_sb3(
            args.scenario,
            args.steps,
            run_dir,
            tuned=True,
            config=tuned_sb3_config(**SETTINGS[name]),
        )
        money = play(SB3Policy(run_dir, env))
        mean, ci = mean_ci(money.tolist())
        paired = mean_ci((money - uniform).tolist())
        print(
            f"{name:11s} {mean:10,.0f} +- {ci:7,.0f}; vs uniform {paired[0]:+9,.0f} +- "
            f"{paired[1]:7,.0f}; {stats['steps_per_s']:.0f} steps/s",
            flush=True,
        )
        row = {"setting": name, "changes": SETTINGS[name], "train": stats, "money": money.tolist()}
        row |= {"uniform": uniform.tolist(), "scenario": args.scenario, "steps": args.steps}
        with (out / "tuning.jsonl").open("a") as file:
            file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
