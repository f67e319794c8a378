"""Is the twin baseline exact after a day's first step? The drift, and an ablation.

Not a test: measures and prints. Run from the repository root:

    python bench/twin_bias.py drift [--scenario tiny] [--days 4] [--checkpoint PATH]
    python bench/twin_bias.py ablation [--scenario tiny] [--steps 20480] [--seeds 0 1]
                                       [--days 16] [--out DIR]

``drift`` plays ``--days`` twin days (8 envs: 4 pairs) with a policy (fresh, or
``--checkpoint``) and prints, per 2-hour block of the day, how far the twins' states have
drifted as the policy sees them (mean |logit_e - logit_twin| / std; 0 on the first step,
where they share one observation) and how much the twins' own GAE advantages share
(correlation: what the difference takes out), and the gap between the twins' logit
Jacobians (the bias is second order: the gap times the gap of the true gradients). The twin
estimator credits env e's logits with
``(A_e noise_e + A_twin noise_twin) / 2``: exact (antithetic) where the states are one,
and otherwise the mean of two states' gradients, biased by as much as they differ.

``ablation`` trains PPO from scratch (no teacher) with the twin baseline on every step
(the default), on the first step only (exact), and without twins, for each
training seed, and evaluates each on VALIDATION days (seeds 2**33 + k: never test days),
printing the mean daily reward and its paired difference to ``first_step``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.policies.attention import AttentionPolicy
from agents.policies.checkpoint import TrainedPolicy, load_checkpoint
from agents.training.buffer import Rollout
from agents.training.config import TeacherConfig, TrainConfig
from agents.training.credit import make_credit
from agents.training.evaluate import run_episode
from agents.training.learner import Learner, make_learner
from agents.training.ppo_math import compute_gae
from agents.training.resume import fresh_start, replay_episodes
from agents.training.rollout import collect_rollout, make_envs
from agents.training.train import train
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv

VALIDATION_BASE = 2**33  # agents/training/seeds.py (lead's branch) names it; not test days


def drift(scenario_name: str, days: int, checkpoint: str | None) -> None:
    scenario = load_scenario(scenario_name)
    loaded = load_checkpoint(checkpoint) if checkpoint is not None else None
    model_config = loaded.model_config if loaded is not None else TrainConfig().model
    config = TrainConfig(num_envs=8, teacher=TeacherConfig(days=0), seed=11, model=model_config)
    envs = make_envs(scenario, config)
    city = envs.first.city
    torch.manual_seed(config.seed)
    model = AttentionPolicy(config.model)
    if loaded is not None:
        model.load_state_dict(loaded.state_dict)
    learner = make_learner(model, config, city)
    credit = make_credit(config, city, scenario.reward.scale, scenario.monitoring.spill)
    episodes = replay_episodes(envs, fresh_start(8, city.num_nodes + 1), learner.flops_per_decision)
    day = envs.day_len
    dist, gap, pair, seen = [], [], [], []
    for _ in range(days):
        rollout, episodes = collect_rollout(
            envs, learner, credit, episodes, num_steps=day, value_std=1.0
        )
        T, E, S = rollout.rewards.shape
        dones = rollout.dones.repeat_interleave(S, dim=1)
        own, _ = compute_gae(
            rollout.rewards.flatten(1),
            rollout.values.flatten(1),
            dones,
            rollout.next_value.flatten(),
            dones[-1],
            gamma=config.gamma,
            lam=config.gae_lambda,
        )
        own = own.view(T, E, S)
        logits = rollout.mean_actions
        std = rollout.log_std.exp()
        nodes = rollout.obs_nodes  # (T, E, N, F): the twins' observations, per feature std
        scale = nodes.flatten(0, 2).std(dim=0).clamp_min(1e-9)  # (F,)
        seen.append(((nodes - nodes.roll(E // 2, dims=1)).abs() / scale).mean((2, 3)).numpy())
        dist.append(((logits - logits.roll(E // 2, dims=1)).abs().mean(-1) / std).numpy())
        gap.append([_gradient_gap(learner, rollout, t) for t in range(T)])
        mate = own.roll(E // 2, dims=1)
        pair.append([np.corrcoef(own[t].flatten(), mate[t].flatten())[0, 1] for t in range(T)])
    envs.vector.close()
    print(
        "grad gap: ||(J_e - J_twin)' v|| / ||J_e' v||, J the logits' Jacobian in the weights at\n"
        "each twin's observation, v random: the twin estimator's bias is\n"
        "(g_e - g_twin)' (J_twin - J_e) / 2 (g: the logits' true gradients), so relative to\n"
        "the gradient it is of the order of this gap times the relative gap of g."
    )
    d, c, r = np.mean(dist, axis=(0, 2)), np.mean(gap, axis=0), np.mean(pair, axis=0)
    o = np.mean(seen, axis=(0, 2))
    block = max(1, day // 12)
    print(f"{scenario_name}, {days} twin days x 4 pairs, policy: {checkpoint or 'fresh'}")
    print("steps    |obs_e - obs_twin|/sd  |logit_e - logit_twin|/std  corr(A_e, A_twin)  grad gap")
    print(f"first step {o[0]:>10.4f} {d[0]:>22.4f} {r[0]:>20.3f} {c[0]:>22.3f}")
    for start in range(0, day, block):
        s = slice(start, start + block)
        print(
            f"{start:>3}-{start + block - 1:<3}    {o[s].mean():>10.4f} {d[s].mean():>22.4f} "
            f"{r[s].mean():>20.3f} {c[s].mean():>22.3f}"
        )


def _gradient_gap(learner: Learner, rollout: Rollout, t: int) -> float:
    """Mean over the pairs at step ``t`` of ``||(J_e - J_twin)' v|| / ||J_e' v||``."""
    E = rollout.obs_nodes.shape[1]
    generator = torch.Generator().manual_seed(t)
    gaps = []
    for e in range(E // 2):
        v = torch.randn(rollout.actions.shape[-1], generator=generator)
        grads = []
        for env in (e, e + E // 2):
            learner.model.zero_grad()
            logits = learner(rollout.obs_nodes[t, env][None], rollout.obs_globals[t, env][None])
            (logits.logits[0] @ v).backward()
            grads.append(torch.cat([p.grad.flatten() for p in learner.actor if p.grad is not None]))
        gaps.append(float((grads[0] - grads[1]).norm() / grads[0].norm().clamp_min(1e-30)))
    return float(np.mean(gaps))


VARIANTS: dict[str, dict[str, Any]] = {
    "every_step": {"twins": True, "twin_baseline": "every_step"},
    "first_step": {"twins": True, "twin_baseline": "first_step"},
    "no_twins": {"twins": False},
}


def ablation(scenario_name: str, steps: int, seeds: list[int], days: int, out: str | None) -> None:
    scenario = load_scenario(scenario_name)
    env = CityEnv(scenario)
    validation = [VALIDATION_BASE + k for k in range(days)]
    rewards: dict[str, list[np.ndarray]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = out or scratch  # --out keeps the checkpoints (for ``drift --checkpoint``)
        for seed in seeds:
            for name, fields in VARIANTS.items():
                config = TrainConfig(
                    total_steps=steps, seed=seed, teacher=TeacherConfig(days=0), **fields
                )
                started = time.perf_counter()
                result = train(scenario, config, Path(tmp) / f"{name}-{seed}")
                policy = TrainedPolicy.from_checkpoint(result.checkpoint_path, env)
                daily = np.array(
                    [run_episode(env, policy, s).summary["reward"] for s in validation]
                )
                rewards[name].append(daily)
                print(
                    f"seed {seed} {name:<10} validation reward {daily.mean():>10.2f} "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    print(f"\n{scenario_name}, {steps} steps, train seeds {seeds}, {days} validation days")
    ref = np.concatenate(rewards["first_step"])
    for name, runs in rewards.items():
        all_days = np.concatenate(runs)
        diff = all_days - ref
        half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size) if name != "first_step" else 0.0
        print(
            f"{name:<10} mean daily reward {all_days.mean():>10.2f}   "
            f"minus first_step {diff.mean():>+8.2f} +- {half:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("drift", "ablation"))
    parser.add_argument("--scenario", default="tiny")
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--steps", type=int, default=20480)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", default=None, help="keep the ablation's checkpoints here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.what == "drift":
        drift(args.scenario, args.days or 4, args.checkpoint)
    else:
        ablation(args.scenario, args.steps, args.seeds, args.days or 16, args.out)


if __name__ == "__main__":
    main()
