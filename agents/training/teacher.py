"""Learning from the privileged teacher (`agents.policies.teacher.EvidenceSearch`) by DAgger.

`pretrain_from_teacher` fits an `AttentionPolicy`, which sees only the observation, to
the teacher's allocations (learning by cheating, Chen et al. 2019) with DAgger (Ross et
al. 2011): the posterior heuristic plays the first days and the teacher labels every
step; then the student plays further days, labelled the same way, and is refitted on all
of it. The loss is KL(teacher || student) of the allocations over the N + 1 slots
(`agents.training.fit.fit_to_allocations`, no value term).

Days are training seeds (`agents.training.rollout.episode_seed` of the run's seed, never a
held-out day); minibatch order draws from its own generator, so the global torch
generator is untouched and a run with a teacher resumes bit for bit like any other.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.policies.attention import AttentionPolicy
from agents.policies.baselines import PosteriorPolicy
from agents.policies.checkpoint import TrainedPolicy, city_neighbours
from agents.policies.protocol import Policy
from agents.policies.teacher import EvidenceSearch
from agents.policies.tiers import TIER_FLOOR, TierRulePolicy, best_tier, on_tier
from agents.training.config import TeacherConfig, TrainConfig
from agents.training.fit import TeacherData, fit_to_allocations
from agents.training.rollout import TEACHER_ENV_INDEX, episode_seed
from simcity.env import CityEnv


def learn_from_teacher(model: AttentionPolicy, env: CityEnv, config: TrainConfig) -> list[float]:
    """The teacher stage of a run: `pretrain_from_teacher` on its own training days."""
    plan = config.teacher
    days = plan.days + plan.dagger_rounds * plan.dagger_days
    seeds = [episode_seed(config.seed, TEACHER_ENV_INDEX, k) for k in range(days)]
    return pretrain_from_teacher(model, env, plan, seeds)


def pretrain_from_teacher(
    model: AttentionPolicy, env: CityEnv, config: TeacherConfig, seeds: list[int]
) -> list[float]:
    """Fit ``model`` in place to the teacher on days ``seeds`` (at least the days the
    config plays); return the last epoch's mean loss of every fit."""
    teacher = EvidenceSearch(env, config.gain)
    neighbours, distances = city_neighbours(env.city, model.config.num_neighbours)
    data: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    generator = torch.Generator().manual_seed(seeds[0] % 2**63)
    losses = []
    rounds = [(config.days, config.epochs)]
    rounds += [(config.dagger_days, max(1, config.epochs // 2))] * config.dagger_rounds
    first = 0
    for index, (days, epochs) in enumerate(rounds):
        player: Policy = (
            TierRulePolicy(PosteriorPolicy(), env.scenario)
            if index == 0
            else TrainedPolicy(model, env, "student")
        )
        data += _labelled_days(env, player, teacher, seeds[first : first + days])
        first += days
        nodes, globals_, targets = (torch.stack(part) for part in zip(*data, strict=True))
        # No value term (weight 0): the critic learns under PPO.
        values = torch.zeros(targets.shape[0], nodes.shape[1] + 1)  # (T, N + 1), unused
        table = TeacherData(nodes, globals_, targets, values)
        fitted = fit_to_allocations(
            model,
            table,
            neighbours,
            distances,
            epochs=epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            value_weight=0.0,
            generator=generator,
        )
        losses.append(fitted[-1])
    return losses


def _labelled_days(
    env: CityEnv, player: Policy, teacher: EvidenceSearch, seeds: list[int]
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(nodes (N, F), globals (G,), teacher's log-shares (N * T + 1,)) of every step played.

    With T analytics tiers the teacher's node weights go on the tier rule's tier, and
    `TIER_FLOOR` of them on each other tier (`agents.policies.tiers`).
    """
    out = []
    num_tiers, tier = env.num_tiers, best_tier(env.scenario)
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        player.reset(seed)
        teacher.reset(seed)
        done = False
        while not done:
            target = teacher.act(obs)  # every step: its belief follows the allocations
            if num_tiers > 1:
                target = on_tier(target, num_tiers, tier, TIER_FLOOR)
            share = target / target.sum()
            out.append(
                (
                    torch.as_tensor(obs["nodes"], dtype=torch.float32),
                    torch.as_tensor(obs["globals"], dtype=torch.float32),
                    torch.as_tensor(np.log(share + 1e-9), dtype=torch.float32),
                )
            )
            obs, _, terminated, truncated, _ = env.step(player.act(obs))
            done = terminated or truncated
    return out
