"""Does PPO training pay? The attention policy against every baseline, zero-shot and SB3.

Not a test: trains, evaluates and prints a report. Run from the repository root (after
``pip install -e '.[dev]'``):

    python bench/learning.py [--scenario downtown] [--steps 20480] [--seeds 60]
                             [--transfer ringtown] [--transfer-seeds 30] [--out DIR]

What it does, on 2 CPU cores (one process per core):

1. Trains the attention policy with `agents.training.train.train` (default `TrainConfig`) for
   ``--steps`` env steps on ``--scenario``, and, at the same time in a second process,
   Stable-Baselines3 PPO (``MultiInputPolicy``, its default MLP) for the same number of
   env steps on the same env, so both trainers share the machine alike. Each reports its
   training throughput (env steps per second, wall time including its env; ours also
   includes learning from the teacher first, `TrainConfig.teacher`, about 3 minutes).
2. Evaluates, on held-out seeds (`agents.training.evaluate.held_out_seeds`, never used in
   training) and with common random numbers, the trained policy, SB3's, every heuristic
   and the oracle: total cost (money: damage + estimation + compute energy + carbon)
   with the mean and Student-t 95% interval, and the paired difference to the best
   heuristic. Both learned policies are billed for their own FLOPs per decision.
3. Reports the share of the uniform-to-oracle gap the policy closes,
   ``(uniform - policy) / (uniform - oracle)``, and whether its interval lies below
   every heuristic's (the targets of issue 4).
4. Runs the trained policy zero-shot on ``--transfer`` (a city of another size).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", message=".*blank value")

HEURISTICS = ("uniform", "population", "traffic", "risk", "alarm", "posterior")


def train_ours(scenario: str, steps: int, out_dir: str) -> dict[str, Any]:
    """Train the attention policy; return its throughput."""
    import torch

    from agents.training.train import TrainConfig, train

    torch.set_num_threads(1)
    config = TrainConfig(total_steps=steps)
    started = time.perf_counter()
    result = train(scenario, config, out_dir)
    wall = time.perf_counter() - started
    return {"steps": result.step, "wall_s": wall, "steps_per_s": result.step / wall}


def train_sb3(scenario: str, steps: int, out_dir: str, queue: Any) -> None:
    """Train SB3 PPO (MultiInputPolicy, defaults) in this process; put its throughput."""
    os.environ["OMP_NUM_THREADS"] = "1"
    warnings.filterwarnings("ignore")
    import stable_baselines3 as sb3
    import torch

    from simcity.env import CityEnv

    torch.set_num_threads(1)
    env = CityEnv(scenario)
    model = sb3.PPO("MultiInputPolicy", env, seed=0, device="cpu", verbose=0)
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - started
    model.save(Path(out_dir) / "sb3_ppo.zip")
    queue.put({"steps": steps, "wall_s": wall, "steps_per_s": steps / wall})


class SB3Policy:
    """An SB3 model behind the `agents.policies.protocol.Policy` protocol (deterministic)."""

    name = "sb3_ppo"

    def __init__(self, path: Path, example_obs: dict[str, np.ndarray]) -> None:
        import stable_baselines3 as sb3

        self.model = sb3.PPO.load(path, device="cpu")
        self.flops_per_decision = self._count_flops(example_obs)

    def reset(self, seed: int | None) -> None:
        """Nothing to reset."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float64)

    def _count_flops(self, obs: dict[str, np.ndarray]) -> int:
        """FLOPs of one forward pass of the SB3 policy, counted like ours."""
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        policy = self.model.policy
        tensor_obs, _ = policy.obs_to_tensor(obs)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            policy(tensor_obs, deterministic=True)
        return int(counter.get_total_flops())


_ENVS: dict[str, Any] = {}


def evaluate_job(job: tuple[str, str, str, int]) -> tuple[str, str, int, float, float]:
    """One episode ``(scenario, policy, run_dir, seed)`` -> total cost and damage."""
    import torch

    from agents.policies.baselines import make_baseline
    from agents.policies.checkpoint import TrainedPolicy
    from agents.training.evaluate import run_episode
    from simcity.env import CityEnv

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    scenario, name, run_dir, seed = job
    env = _ENVS.get(scenario)
    if env is None:
        env = _ENVS[scenario] = CityEnv(scenario)
    policy: Any
    if name == "attention":
        policy = TrainedPolicy.from_checkpoint(Path(run_dir) / "checkpoint.pt", env)
    elif name == "sb3_ppo":
        policy = SB3Policy(Path(run_dir) / "sb3_ppo.zip", env.reset(seed=0)[0])
    else:
        policy = make_baseline(name, env)
    summary = run_episode(env, policy, seed).summary
    return scenario, name, seed, summary["money"], summary["damage"]


def table(
    results: Sequence[tuple[str, str, int, float, float]], scenario: str
) -> dict[str, np.ndarray]:
    """Total cost per policy (seeds in order) on one scenario."""
    costs: dict[str, list[tuple[int, float]]] = {}
    for scen, name, seed, money, _ in results:
        if scen == scenario:
            costs.setdefault(name, []).append((seed, money))
    return {name: np.array([m for _, m in sorted(rows)]) for name, rows in costs.items()}


def report(costs: dict[str, np.ndarray], title: str) -> dict[str, Any]:
    """Print mean +- 95% interval per policy and the gap closed; return the figures."""
    from agents.training.evaluate import mean_ci

    print(f"\n{title}: total cost per day ($), mean +- 95% interval, {len(costs['uniform'])} seeds")
    stats = {name: mean_ci(values.tolist()) for name, values in costs.items()}
    for name, (mean, ci) in sorted(stats.items(), key=lambda item: item[1][0]):
        print(f"  {name:12s} {mean:12,.0f} +- {ci:9,.0f}")
    uniform, oracle = stats["uniform"][0], stats["oracle"][0]
    out: dict[str, Any] = {"stats": {k: {"mean": m, "ci95": c} for k, (m, c) in stats.items()}}
    best = min((h for h in HEURISTICS if h in stats), key=lambda h: stats[h][0])
    for name in ("attention", "sb3_ppo"):
        if name not in stats:
            continue
        mean, ci = stats[name]
        gap = (uniform - mean) / (uniform - oracle)
        paired = mean_ci((costs[name] - costs[best]).tolist())
        below_all = all(mean + ci < stats[h][0] - stats[h][1] for h in HEURISTICS if h in stats)
        print(
            f"  {name}: closes {gap:.1%} of the uniform-to-oracle gap; vs best heuristic "
            f"({best}) paired {paired[0]:+,.0f} +- {paired[1]:,.0f}; interval below every "
            f"heuristic's: {below_all}"
        )
        out[name] = {"gap_closed": gap, "paired_vs_best": paired, "best": best, "below": below_all}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="downtown")
    parser.add_argument("--steps", type=int, default=20_480)
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--transfer", default="ringtown")
    parser.add_argument("--transfer-seeds", type=int, default=30)
    parser.add_argument("--out", default=None, help="Folder for checkpoints and results.json")
    args = parser.parse_args()
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="simcity-learning-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    sb3 = context.Process(target=train_sb3, args=(args.scenario, args.steps, str(out_dir), queue))
    sb3.start()
    ours = train_ours(args.scenario, args.steps, str(out_dir))
    sb3_stats = queue.get()
    sb3.join()
    train_wall = time.perf_counter() - started
    print(f"training, {args.steps:,} env steps each, side by side on one core each:")
    print(f"  attention PPO  {ours['steps_per_s']:8.1f} steps/s  ({ours['wall_s'] / 60:.1f} min)")
    print(
        f"  SB3 PPO (MLP)  {sb3_stats['steps_per_s']:8.1f} steps/s  "
        f"({sb3_stats['wall_s'] / 60:.1f} min); ratio ours/SB3 "
        f"{ours['steps_per_s'] / sb3_stats['steps_per_s']:.2f}"
    )

    from agents.training.evaluate import held_out_seeds

    policies = ("attention", "sb3_ppo", "random", *HEURISTICS, "oracle")
    jobs = [
        (args.scenario, p, str(out_dir), s) for p in policies for s in held_out_seeds(args.seeds)
    ]
    transfer = ("attention", "random", *HEURISTICS, "oracle")
    jobs += [
        (args.transfer, p, str(out_dir), s)
        for p in transfer
        for s in held_out_seeds(args.transfer_seeds)
    ]
    with context.Pool(2) as pool:
        results = pool.map(evaluate_job, jobs, chunksize=4)
    main_report = report(table(results, args.scenario), f"{args.scenario} (trained here)")
    transfer_report = report(table(results, args.transfer), f"{args.transfer} (zero-shot)")
    wall = time.perf_counter() - started
    print(
        f"\nwall: training {train_wall / 60:.1f} min, all {wall / 60:.1f} min; files in {out_dir}"
    )
    doc = {
        "scenario": args.scenario,
        "steps": args.steps,
        "train": {"attention": ours, "sb3_ppo": sb3_stats},
        "main": main_report,
        "transfer": {"scenario": args.transfer, **transfer_report},
        "wall_s": wall,
    }
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
