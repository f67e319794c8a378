"""How throughput grows with env worker processes on this machine.

Not a test: prints a table. Run from the repository root (after ``pip install -e .``):

    python bench/workers.py [--scenario downtown] [--workers 1 2 4] [--steps 192]

For each worker count W it measures, after a warm-up day that fills every worker's
traffic cache (later days reuse it, as in training):

- env steps/s of ``gymnasium.vector.AsyncVectorEnv`` with W worker processes under the
  uniform allocation, against ``SyncVectorEnv`` with the same W envs in this process;
- PPO training steps/s (`agents.training.train.train`, ``async_envs=True``, ``num_envs=W``) for a
  few updates.

Ratios are against W = 1 measured in the same run. On 2 cores expect the env alone to
scale to about 2x and training much less: the policy update runs in the main process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from agents.training.train import TrainConfig, train
from simcity.city.build import build_city
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv

warnings.filterwarnings("ignore", message=".*blank value")


def env_steps_per_s(scenario_name: str, workers: int, steps: int, parallel: bool) -> float:
    """Vector-env steps/s (counting every env) after one warm-up day."""
    scenario = load_scenario(scenario_name)
    city = build_city(scenario)
    fns = [lambda: CityEnv(scenario, city=city) for _ in range(workers)]
    cls = AsyncVectorEnv if parallel else SyncVectorEnv
    envs = cls(fns, autoreset_mode=AutoresetMode.DISABLED)
    action = np.ones((workers, city.num_nodes + 1))
    try:
        envs.reset(seed=list(range(workers)))
        for _ in range(scenario.time.num_steps):  # warm-up day: traffic caches fill
            envs.step(action)
        day = scenario.time.num_steps
        started = time.perf_counter()
        for k in range(steps):
            if k % day == 0:  # a new day (episode) for every env
                envs.reset(seed=[(k // day + 1) * workers + i for i in range(workers)])
            envs.step(action)
        return steps * workers / (time.perf_counter() - started)
    finally:
        envs.close()


def train_steps_per_s(scenario_name: str, workers: int, updates: int) -> float:
    """PPO steps/s over ``updates`` updates of one day per env, after the first."""
    config = TrainConfig(total_steps=96 * workers * (updates + 1), num_envs=workers)
    config = TrainConfig(**{**config.__dict__, "async_envs": True})
    rates: list[float] = []
    with tempfile.TemporaryDirectory() as out:
        train(scenario_name, config, out, progress=lambda s: rates.append(s.steps_per_s))
    return float(np.mean(rates[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="downtown")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=192, help="vector steps to time")
    parser.add_argument("--updates", type=int, default=2, help="timed PPO updates")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.scenario}: steps/s counting every env (ratio to 1 worker)")
    print(f"{'workers':>8} {'sync env':>10} {'async env':>16} {'async training':>20}")
    base_env = base_train = 0.0
    for w in args.workers:
        sync = env_steps_per_s(args.scenario, w, args.steps, parallel=False)
        parallel = env_steps_per_s(args.scenario, w, args.steps, parallel=True)
        training = train_steps_per_s(args.scenario, w, args.updates)
        base_env = base_env or parallel
        base_train = base_train or training
        print(
            f"{w:>8} {sync:>10.0f} {parallel:>9.0f} ({parallel / base_env:.2f}x)"
            f" {training:>12.1f} ({training / base_train:.2f}x)"
        )


if __name__ == "__main__":
    main()
