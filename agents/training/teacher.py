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

Resume. The stage can stop after any labelled day or any epoch of a fit and continue from
there bit for bit (`TeacherProgress`, saved by `agents.training.teacher_checkpoint`): days
are labelled one at a time from their seeds, and a fit resumes with its Adam state and its
minibatch generator's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.policies.attention import AttentionPolicy
from agents.policies.baselines import PosteriorPolicy
from agents.policies.checkpoint import TrainedPolicy, city_neighbours
from agents.policies.protocol import Policy
from agents.policies.teacher import EvidenceSearch
from agents.policies.tiers import TIER_FLOOR, TierRulePolicy, best_tier, on_tier
from agents.training.config import TeacherConfig, TrainConfig
from agents.training.fit import FitResume, TeacherData, fit_to_allocations
from agents.training.rollout import TEACHER_ENV_INDEX, episode_seed
from simcity.env import CityEnv

Sample = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""One labelled step: nodes (N, F), globals (G,), the teacher's log-shares (N + 1,)."""


@dataclass
class TeacherProgress:
    """How far the teacher stage got: what a teacher checkpoint holds beside the weights.

    Rounds are `teacher_rounds`: the posterior's days, then each DAgger round's. A round
    labels its days one by one, then fits the student for its epochs.
    """

    round: int = 0  # the round under way; len(rounds): the stage is done
    days_done: int = 0  # days of this round labelled
    epochs_done: int = 0  # epochs of this round's fit done (once all its days are labelled)
    samples: list[Sample] = field(default_factory=list)  # every round's so far
    losses: list[float] = field(default_factory=list)  # last epoch's loss of each finished fit
    epoch_losses: list[float] = field(default_factory=list)  # this round's fit so far
    fit_optimizer: dict[str, Any] | None = None  # this round's Adam, once an epoch is done
    generator_state: torch.Tensor | None = None  # the minibatch order's generator


SaveProgress = Callable[[TeacherProgress, torch.Generator, bool], None]
"""Called at every point the stage could resume from (after a day, after an epoch), and
once at its end (the flag: the stage is done)."""


def teacher_rounds(config: TeacherConfig) -> list[tuple[int, int]]:
    """(days, epochs) of every round: the posterior's, then the DAgger rounds'."""
    rounds = [(config.days, config.epochs)]
    return rounds + [(config.dagger_days, max(1, config.epochs // 2))] * config.dagger_rounds


def teacher_stage(config: TeacherConfig, progress: TeacherProgress) -> tuple[str, int, int]:
    """(stage, done, total) of the teacher stage at ``progress``, for progress reports:
    days labelled of the round under way, or epochs of its fit, or the stage done.

    >>> teacher_stage(TeacherConfig(days=24), TeacherProgress(round=0, days_done=3))
    ('teacher days', 3, 24)
    >>> teacher_stage(TeacherConfig(days=24), TeacherProgress(round=1, days_done=16))
    ('teacher fit 2/2', 0, 10)
    """
    rounds = teacher_rounds(config)
    if progress.round >= len(rounds):
        return "teacher done", 1, 1
    days, epochs = rounds[progress.round]
    dagger = f" {progress.round}/{config.dagger_rounds}" * (config.dagger_rounds > 1)
    name = "teacher days" if progress.round == 0 else f"teacher DAgger days{dagger}"
    if progress.days_done < days:
        return name, progress.days_done, days
    return f"teacher fit {progress.round + 1}/{len(rounds)}", progress.epochs_done, epochs


def teacher_seeds(config: TrainConfig) -> list[int]:
    """The training days the teacher stage of run ``config`` plays, in order."""
    plan = config.teacher
    days = plan.days + plan.dagger_rounds * plan.dagger_days
    return [episode_seed(config.seed, TEACHER_ENV_INDEX, k) for k in range(days)]


def learn_from_teacher(
    model: AttentionPolicy,
    env: CityEnv,
    config: TrainConfig,
    *,
    start: TeacherProgress | None = None,
    save: SaveProgress | None = None,
) -> list[float]:
    """The teacher stage of a run: `pretrain_from_teacher` on its own training days."""
    return pretrain_from_teacher(
        model,
        env,
        config.teacher,
        teacher_seeds(config),
        start=start,
        save=save,
        carbon_weights=tuple(config.carbon_weights),
    )


def pretrain_from_teacher(
    model: AttentionPolicy,
    env: CityEnv,
    config: TeacherConfig,
    seeds: list[int],
    *,
    start: TeacherProgress | None = None,
    save: SaveProgress | None = None,
    carbon_weights: tuple[float, ...] = (),
) -> list[float]:
    """Fit ``model`` in place to the teacher on days ``seeds`` (at least the days the
    config plays); return the last epoch's mean loss of every fit. With
    ``carbon_weights`` day ``seed`` is played at weight ``carbon_weights[seed % len]``,
    so the student sees the teacher answer every price it will be told.

    ``start`` continues a stage stopped where it says (``model`` holding the weights saved
    with it), bit for bit; ``save`` is called at every point it could continue from.
    """
    teacher = EvidenceSearch(env, config.gain)
    neighbours, distances = city_neighbours(env.city, model.config.num_neighbours)
    generator = torch.Generator().manual_seed(seeds[0] % 2**63)
    progress = start if start is not None else TeacherProgress()
    if progress.generator_state is not None:
        generator.set_state(progress.generator_state)

    def checkpoint(done: bool = False) -> None:
        if save is not None:
            save(progress, generator, done)

    def after_epoch(epochs_done: int, loss: float, optimizer: torch.optim.Adam) -> None:
        progress.epochs_done = epochs_done
        progress.epoch_losses.append(loss)
        progress.fit_optimizer = optimizer.state_dict()
        checkpoint()

    rounds = teacher_rounds(config)
    first = sum(days for days, _ in rounds[: progress.round])
    for index in range(progress.round, len(rounds)):
        days, epochs = rounds[index]
        if progress.days_done < days:
            player: Policy = (
                TierRulePolicy(PosteriorPolicy(), env.scenario)
                if index == 0
                else TrainedPolicy(model, env, "student")
            )
            while progress.days_done < days:
                day = seeds[first + progress.days_done]
                progress.samples += _labelled_days(env, player, teacher, [day], carbon_weights)
                progress.days_done += 1
                checkpoint()
        first += days
        nodes, globals_, targets = (torch.stack(p) for p in zip(*progress.samples, strict=True))
        # No value term (weight 0): the critic learns under PPO.
        values = torch.zeros(targets.shape[0], nodes.shape[1] + 1)  # (T, N + 1), unused
        table = TeacherData(nodes, globals_, targets, values)
        resume = None
        if progress.fit_optimizer is not None:
            resume = FitResume(progress.epochs_done, progress.fit_optimizer)
        fit_to_allocations(
            model,
            table,
            neighbours,
            distances,
            epochs=epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            value_weight=0.0,
            generator=generator,
            resume=resume,
            on_epoch=after_epoch,
        )
        progress.losses.append(progress.epoch_losses[-1])
        progress.round, progress.days_done, progress.epochs_done = index + 1, 0, 0
        progress.epoch_losses, progress.fit_optimizer = [], None
    progress.samples = []  # the stage is done: PPO needs only the weights
    checkpoint(done=True)
    return list(progress.losses)


def _labelled_days(
    env: CityEnv,
    player: Policy,
    teacher: EvidenceSearch,
    seeds: list[int],
    carbon_weights: tuple[float, ...] = (),
) -> list[Sample]:
    """(nodes (N, F), globals (G,), teacher's log-shares (N * T + 1,)) of every step played.

    With T analytics tiers the teacher's node weights go on the tier rule's tier, and
    `TIER_FLOOR` of them on each other tier (`agents.policies.tiers`).
    """
    out = []
    num_tiers, tier = env.num_tiers, best_tier(env.scenario)
    for seed in seeds:
        options = None
        if carbon_weights:
            options = {"carbon_weight": carbon_weights[seed % len(carbon_weights)]}
        obs, _ = env.reset(seed=seed, options=options)
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
