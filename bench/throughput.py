"""Training throughput: our PPO trainer against tuned Stable-Baselines3 PPO, env steps per second.

Not a test: trains both, prints their rates and the ratio. Run from the repository root
(after ``pip install -e '.[dev]'``, which brings the ``sb3`` extra):

    python bench/throughput.py [--scenario downtown] [--steps 15360]
                               [--out bench/results/throughput.json]

Both train for ``--steps`` env steps on ``--scenario``, one after the other, each alone on
the machine in a fresh process (torch threads 1, ``OMP_NUM_THREADS=1``), so neither
inherits the other's memoised traffic equilibria:

(a) ours, `agents.training.train.train` with ``TrainConfig(total_steps=steps,
    teacher=TeacherConfig(days=0))``: PPO collect and update only, no teacher stage, on its
    ``num_envs`` (4) envs in this process (`agents.training.rollout.make_envs`).
(b) tuned SB3 PPO, `agents.references.sb3.train_sb3(..., tuned=True)`: ``learn`` on its 4
    `SoftmaxActions` envs under `VecNormalize`, in a ``DummyVecEnv``.

Both round up to whole rollouts of 384 steps (4 envs x 96), so with the default steps they
play the same number. The rate compared is end to end: env steps played over the wall time
of the whole call, from the scenario name to the saved model (building the city and envs
included, for both). Each trainer's own figure is printed beside it: ours, the mean of its
per-update ``steps_per_s``; SB3, ``learn`` alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_ours(scenario: str, steps: int, out_dir: str) -> dict[str, Any]:
    """Our trainer without the teacher stage; end-to-end and its own per-update rate."""
    import torch

    from agents.training.config import TeacherConfig
    from agents.training.train import TrainConfig, train

    torch.set_num_threads(1)
    rates: list[float] = []
    started = time.perf_counter()
    result = train(
        scenario,
        TrainConfig(total_steps=steps, teacher=TeacherConfig(days=0)),
        out_dir,
        progress=lambda stats: rates.append(stats.steps_per_s),
    )
    wall = time.perf_counter() - started
    return {
        "steps": result.step,
        "wall_s": wall,
        "steps_per_s": result.step / wall,
        "own_steps_per_s": sum(rates) / len(rates),  # mean over updates (collect + update)
    }


def run_sb3(scenario: str, steps: int, out_dir: str) -> dict[str, Any]:
    """Tuned SB3 PPO; end-to-end and ``learn`` alone."""
    from agents.references.sb3 import train_sb3

    started = time.perf_counter()
    stats = train_sb3(scenario, steps, out_dir, tuned=True)
    wall = time.perf_counter() - started
    return {
        "steps": stats["steps"],
        "wall_s": wall,
        "steps_per_s": stats["steps"] / wall,
        "own_steps_per_s": stats["steps_per_s"],  # learn() alone
    }


def _child(name: str, scenario: str, steps: int, out_dir: str, queue: Any) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    warnings.filterwarnings("ignore")
    runner = run_ours if name == "ours" else run_sb3
    queue.put(runner(scenario, steps, out_dir))


def in_fresh_process(name: str, scenario: str, steps: int, out_dir: str) -> dict[str, Any]:
    """Run one trainer in a spawned process, alone, and return its figures."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(name, scenario, steps, out_dir, queue))
    process.start()
    stats: dict[str, Any] = queue.get()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{name} exited with {process.exitcode}")
    return stats


def git_commit() -> str:
    """HEAD's commit, with ``-dirty`` when the tree has changes."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head + ("-dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="downtown")
    parser.add_argument("--steps", type=int, default=15_360)
    parser.add_argument("--out", default=None, help="JSON file for the results")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="simcity-throughput-"))
    results = {}
    for name in ("ours", "sb3_tuned"):
        load = os.getloadavg()[0]  # other work on the machine skews the rates: say how much
        results[name] = in_fresh_process(name, args.scenario, args.steps, str(work / name))
        stats = results[name]
        stats["load_avg_1min_before"] = load
        print(
            f"  {name:10s} {stats['steps']:7,d} steps in {stats['wall_s']:7.1f} s: "
            f"{stats['steps_per_s']:7.1f} steps/s end to end ({stats['own_steps_per_s']:.1f} "
            f"by its own count; load {load:.1f} before)",
            flush=True,
        )
    ratio = results["ours"]["steps_per_s"] / results["sb3_tuned"]["steps_per_s"]
    own = results["ours"]["own_steps_per_s"] / results["sb3_tuned"]["own_steps_per_s"]
    print(f"ratio ours/SB3, env steps per second: {ratio:.2f} end to end ({own:.2f} own counts)")
    if args.out:
        doc = {
            "command": " ".join(["python", *sys.argv]),
            "commit": git_commit(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "scenario": args.scenario,
            "steps": args.steps,
            "results": results,
            "ratio_ours_over_sb3": ratio,
            "ratio_own_counts": own,
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
