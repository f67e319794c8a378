"""Checkpoints of a run, and resuming one where it stopped.

Resume semantics. ``train(..., resume=True)`` continues from ``out_dir/checkpoint.pt`` and
ends with the same parameters, bit for bit, as an uninterrupted run with the same
`TrainConfig`. The checkpoint holds the weights, the Adam state, the step and update
counts, torch's RNG state, the returns' running std, and the actions taken so far in the
episodes under way. Env state is not pickled: every episode starts from
``reset(seed=episode_seed(seed, env, k))`` and `CityEnv` is deterministic given its seed
and its actions, so a resumed run rebuilds the envs by resetting them with the same seeds
and replaying those actions (`replay_episodes`); this relies on all envs starting their
episodes together (`agents.training.rollout`). A resume with another ``total_steps`` (more
updates) is a new plan: it keeps going but anneals the learning rate over the new length,
so it is no longer identical to any uninterrupted run; `planned_steps` reads the plan a
checkpoint holds, so that ``simcity train --resume`` without ``--steps`` keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.policies.attention import to_weights
from agents.policies.checkpoint import load_checkpoint, save_checkpoint
from agents.policies.checks import read_torch_file
from agents.training.config import TrainConfig
from agents.training.learner import Learner
from agents.training.ppo_math import RunningStd
from agents.training.rollout import Episodes, TrainEnvs
from agents.training.state_checks import (
    check_rng_state,
    check_running_std,
    load_optimizer_state,
    set_generator_state,
)
from agents.training.train_io import check_resumable
from simcity.errors import SimcityError


@dataclass(frozen=True)
class RunStart:
    """Where a run starts: from nothing, or where its checkpoint left it."""

    update: int  # updates done
    step: int  # env steps done, over all envs
    episode_actions: torch.Tensor  # (steps, E, N + 1) of the episodes under way
    returns_std: RunningStd


def planned_steps(path: Path) -> int | None:
    """The ``total_steps`` the run that wrote checkpoint (or teacher checkpoint) ``path``
    planned; None where the file holds none (the resume that reads it says what is wrong)."""
    try:
        raw = read_torch_file(path, expected="a checkpoint", kind="checkpoint")
    except SimcityError:
        return None
    extra = raw.get("extra", raw) if isinstance(raw, dict) else None
    saved = extra.get("train_config") if isinstance(extra, dict) else None
    steps = saved.get("total_steps") if isinstance(saved, dict) else None
    return steps if isinstance(steps, int) and steps > 0 else None


def fresh_start(num_envs: int, num_actions: int) -> RunStart:
    return RunStart(0, 0, torch.zeros(0, num_envs, num_actions), RunningStd())


def restore_run(
    path: Path, config: TrainConfig, scenario_name: str, learner: Learner, day_len: int
) -> RunStart:
    """Load ``path`` into ``learner`` and torch's generator; return the run's counters.

    Everything restored is checked first (`agents.training.state_checks`): the counters,
    the episode actions, the returns' std, torch's RNG state and Adam's state.

    Raises:
        SimcityError: the checkpoint does not continue this run (`check_resumable`), or a
            field it restores is damaged; the error names the file and the field.
    """
    checkpoint = load_checkpoint(path, expected_config=config.model)
    E = config.num_envs
    num_actions = learner.neighbours.shape[0] * config.model.num_tiers + 1
    update, step = checkpoint.update, checkpoint.step
    if step != update * config.batch_size:
        raise SimcityError(
            f"is {step} at update {update}",
            file=path,
            field="step",
            expected=f"update x {config.batch_size} (the batch) env steps",
        )
    episode_actions = check_resumable(
        checkpoint, config, scenario_name, ((step // E) % day_len, E, num_actions)
    )
    returns_std = check_running_std(
        checkpoint.extra.get("returns_std"), file=path, field="extra.returns_std"
    )
    rng_states = checkpoint.rng_states
    torch_state = check_rng_state(
        rng_states.get("torch"), torch.get_rng_state(), file=path, field="rng_states.torch"
    )
    learner.model.load_state_dict(checkpoint.state_dict)
    load_optimizer_state(
        learner.optimizer, checkpoint.optimizer_state, file=path, field="optimizer_state"
    )
    set_generator_state(torch.default_generator, torch_state, file=path, field="rng_states.torch")
    return RunStart(update, step, episode_actions, RunningStd(*returns_std))


def replay_episodes(envs: TrainEnvs, start: RunStart, flops_per_decision: int) -> Episodes:
    """Reset the envs to the episodes under way at ``start`` and replay their actions."""
    obs = envs.reset(start.step, flops_per_decision)
    episode_return = np.zeros(envs.num_envs)
    for action in start.episode_actions:
        obs, reward, _, _, _ = envs.vector.step(to_weights(action).numpy())
        episode_return += reward
    return Episodes(obs, start.step, episode_return, start.episode_actions)


def save_run(
    path: Path,
    config: TrainConfig,
    scenario_name: str,
    learner: Learner,
    update: int,
    episodes: Episodes,
    returns_std: RunningStd,
) -> None:
    """Write everything `restore_run` and `replay_episodes` need, atomically, to ``path``."""
    save_checkpoint(
        path,
        model_config=config.model,
        state_dict=learner.model.state_dict(),
        optimizer_state=learner.optimizer.state_dict(),
        step=episodes.step,
        update=update,
        rng_states={"torch": torch.get_rng_state()},
        extra={
            "train_config": config.as_dict(),
            "scenario": scenario_name,
            "flops_per_decision": learner.flops_per_decision,
            "episode_actions": episodes.actions.clone(),
            "returns_std": returns_std.state(),
        },
    )
