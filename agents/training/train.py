"""PPO for the graph-attention policy in `CityEnv`, in one loop read top to bottom.

`train` sets a run up (envs, the teacher stage, the learner, a resume), then runs one loop
over updates, each four short sections as in CleanRL's ``ppo.py``: collect a rollout
(`agents.training.rollout`), its advantages (`agents.training.credit`), the PPO update
(`agents.training.update`), log and checkpoint (`agents.training.train_io`,
`agents.training.resume`). The math lives in `agents.training.ppo_math`.

Credit (`agents.training.credit`). With ``TrainConfig.node_credit`` (the default) every
action slot is credited with its own cost, as in multi-agent PPO with shared weights, and
with ``TrainConfig.budget_coupling`` also with what its share of the budget cost the other
nodes; otherwise it is textbook PPO on the joint action. Value targets are divided by a
running std of the returns (`agents.training.ppo_math.RunningStd`).

Twin rollouts (`agents.training.rollout`). With ``TrainConfig.twins`` (the default) env i
and env i + E/2 play the same day and explore with opposite noise, and each env's
advantage is taken less its twin's: the incidents' luck cancels, what the allocations did
stays. The baseline is exact on a day's first step, where the twins share one state, and
biased to second order after (``TrainConfig.twin_baseline``; measured, and ablated on
validation days, in `agents.training.credit`).

The day's end (`agents.training.rollout`). The observation carries ``day_progress``, so
the day's end is part of the task: it is treated as terminal, and nothing is bootstrapped
past it.

Teacher (`agents.training.teacher`). With ``TrainConfig.teacher`` (days > 0) a fresh
network (no ``init_from``) first learns the allocation of a privileged teacher, a Bayes
search that knows the true arrival rates and reads the sensors' evidence, by DAgger on
training days, and PPO starts from there; its first ``teacher.critic_updates`` updates
train only the value head (the distilled actor has no critic yet, and the value loss
through the shared layers otherwise undoes the teacher's lesson in one update: approx. KL
80), and PPO's learning rate is then ``teacher.ppo_lr``, smaller than a run from scratch
needs. The stage writes ``teacher.pt`` as it goes (`agents.training.teacher_checkpoint`),
so a run killed there resumes in the stage, bit for bit; a resume from a PPO checkpoint
skips the teacher (the checkpoint holds its result).

Resume (`agents.training.resume`). ``train(..., resume=True)`` continues from
``out_dir/checkpoint.pt`` and ends with the same parameters, bit for bit, as an
uninterrupted run with the same `TrainConfig`. The checkpoint is written after the first
update (so a run stopped any time after it resumes), every ``checkpoint_every`` and at the
end; writing it reads torch's RNG state and draws nothing, so it changes no result.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.policies.attention import AttentionPolicy
from agents.policies.checkpoint import load_checkpoint
from agents.training.buffer import Batch
from agents.training.config import TrainConfig
from agents.training.credit import make_credit, slot_rewards
from agents.training.learner import make_learner, set_learning_rate
from agents.training.ppo_math import linear_schedule
from agents.training.resume import fresh_start, replay_episodes, restore_run, save_run
from agents.training.rollout import TEACHER_ENV_INDEX, collect_rollout, episode_seed, make_envs
from agents.training.teacher import (
    TeacherProgress,
    learn_from_teacher,
    teacher_rounds,
    teacher_stage,
)
from agents.training.teacher_checkpoint import (
    TEACHER_CHECKPOINT_S,
    TEACHER_NAME,
    TeacherCheckpoints,
    load_teacher,
)
from agents.training.train_io import (
    UpdateStats,
    log_update,
    start_progress_file,
    tensorboard_writer,
)
from agents.training.update import ppo_update
from simcity.config.scenario import Scenario, load_scenario
from simcity.safe_io import check_output_file

__all__ = [
    "CHECKPOINT_NAME",
    "PROGRESS_NAME",
    "TEACHER_ENV_INDEX",
    "TrainConfig",
    "TrainResult",
    "UpdateStats",
    "episode_seed",
    "slot_rewards",
    "train",
]

CHECKPOINT_NAME = "checkpoint.pt"
PROGRESS_NAME = "progress.csv"


@dataclass(frozen=True)
class TrainResult:
    """Where the run wrote its files and how far it got."""

    checkpoint_path: Path
    progress_path: Path
    step: int
    update: int
    last: UpdateStats | None  # None when a resume found nothing left to do


def train(
    scenario: str | Path | Scenario,
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: Callable[[UpdateStats], None] | None = None,
    stage: Callable[[str, int, int], None] | None = None,
    teacher_checkpoint_s: float = TEACHER_CHECKPOINT_S,
) -> TrainResult:
    """Train an `AttentionPolicy` with PPO; write ``checkpoint.pt`` (after the first
    update, every ``checkpoint_every`` and at the end) and ``progress.csv`` (and, during
    the teacher stage, ``teacher.pt`` after its first day and every
    ``teacher_checkpoint_s`` seconds).

    ``progress`` is called after every update; ``stage(name, done, total)`` whenever the
    run moves on (`teacher_stage` in the teacher stage; ``"ppo"`` or ``"ppo critic
    warm-up"`` with the updates done before each update). See the module doc for ``resume``.
    """
    torch.set_num_threads(1)  # small matrices: threads cost more than they give, and vary results
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path, progress_path = out_dir / CHECKPOINT_NAME, out_dir / PROGRESS_NAME
    teacher_path = out_dir / TEACHER_NAME
    for path in (checkpoint_path, progress_path, teacher_path):
        check_output_file(path, expected="a regular file the run may replace")
    scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)

    # Envs on one city, and how each action slot is credited (per node or jointly).
    if config.model.num_tiers != scenario.compute.num_tiers:  # T logits per node
        sized = dataclasses.replace(config.model, num_tiers=scenario.compute.num_tiers)
        config = dataclasses.replace(config, model=sized)
    envs = make_envs(scenario, config)
    city = envs.first.city
    credit = make_credit(config, city, scenario.reward.scale, scenario.monitoring.spill)

    # The model (seeded, or another run's weights), the teacher's lesson, then Adam.
    torch.manual_seed(config.seed)
    model = AttentionPolicy(config.model)
    if config.init_from is not None:  # fine-tuning: start from another run's weights
        model.load_state_dict(
            load_checkpoint(config.init_from, expected_config=config.model).state_dict
        )
    # A resume's PPO checkpoint holds the lesson; without one, a teacher checkpoint may.
    resume_teacher = (
        resume
        and config.learns_from_teacher
        and not checkpoint_path.exists()
        and teacher_path.exists()
    )
    if config.learns_from_teacher and (resume_teacher or not resume):
        taught = None
        if resume_teacher:
            taught = load_teacher(
                teacher_path, model, config, scenario.name, city.num_nodes, envs.day_len
            )
        saver = TeacherCheckpoints(
            teacher_path, model, config, scenario.name, city.num_nodes, teacher_checkpoint_s
        )

        def save(done: TeacherProgress, generator: torch.Generator, end: bool = False) -> None:
            saver(done, generator, end)
            if not teacher_path.exists():  # a Ctrl-C from the first day on can resume
                saver.write(done, generator)
            if stage is not None:
                stage(*teacher_stage(config.teacher, done))

        if taught is None or taught.round < len(teacher_rounds(config.teacher)):
            if stage is not None:
                stage(*teacher_stage(config.teacher, taught or TeacherProgress()))
            learn_from_teacher(model, envs.first, config, start=taught, save=save)
    learner = make_learner(model, config, city)

    # Start afresh, or where the checkpoint stopped, replaying the episodes under way.
    start = (
        restore_run(checkpoint_path, config, scenario.name, learner, envs.day_len)
        if resume and not resume_teacher
        else fresh_start(config.num_envs, city.num_nodes * config.model.num_tiers + 1)
    )
    start_progress_file(progress_path, keep_through_update=start.update)
    board = tensorboard_writer(out_dir)
    episodes = replay_episodes(envs, start, learner.flops_per_decision)
    update, returns_std = start.update, start.returns_std

    last: UpdateStats | None = None
    while update < config.num_updates:
        critic_only = config.learns_from_teacher and update < config.teacher.critic_updates
        if stage is not None:
            stage("ppo critic warm-up" if critic_only else "ppo", update, config.num_updates)
        started = time.perf_counter()
        lr = linear_schedule(config.ppo_lr, 0.0, update / config.num_updates)
        set_learning_rate(learner.optimizer, lr)

        # Collect a rollout, valuing in money at the returns' std so far.
        rollout, episodes = collect_rollout(
            envs,
            learner,
            credit,
            episodes,
            num_steps=config.num_steps,
            value_std=returns_std.std,
        )

        # Advantages per credited slot; the critic then learns in the returns' new std.
        advantages, returns = credit.advantages(rollout)  # (T, E, S) each
        returns_std.update(returns)

        # Update: epochs of shuffled minibatches of the flattened (T * E) batch.
        batch = Batch.of(rollout, advantages, returns, returns_std.std)
        loss = ppo_update(learner, batch, credit, config, critic_only=critic_only)
        update += 1

        # Log (the last minibatch's losses, as CleanRL does); checkpoint after the first
        # update (a Ctrl-C from then on can resume), every K and at the end.
        finished = rollout.finished
        last = UpdateStats(
            update=update,
            num_updates=config.num_updates,
            step=episodes.step,
            lr=lr,
            mean_episode_reward=float(np.mean(finished)) if finished else math.nan,
            episodes=len(finished),
            policy_loss=loss.policy.item(),
            value_loss=loss.value.item(),
            entropy=credit.entropy_per_slot(loss.entropy.item()),
            action_std=learner.model.log_std.exp().item(),
            approx_kl=loss.approx_kl.item(),
            clip_fraction=loss.clip_fraction.item(),
            steps_per_s=config.batch_size / (time.perf_counter() - started),
        )
        log_update(progress_path, board, last)
        if update == 1 or update % config.checkpoint_every == 0 or update == config.num_updates:
            save_run(checkpoint_path, config, scenario.name, learner, update, episodes, returns_std)
            if teacher_path.is_file():  # the PPO checkpoint now holds the teacher's lesson
                teacher_path.unlink()
        if progress is not None:
            progress(last)
    envs.vector.close()
    if board is not None:
        board.close()
    return TrainResult(checkpoint_path, progress_path, episodes.step, update, last)
