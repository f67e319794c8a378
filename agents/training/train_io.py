"""What a training run reads and writes besides the model: progress rows, logs, resumes."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from agents.policies.checkpoint import Checkpoint
from simcity.errors import SimcityError

if TYPE_CHECKING:
    from agents.training.config import TrainConfig

RESUMABLE_CHANGES = ("total_steps", "checkpoint_every", "async_envs")
"""`TrainConfig` fields a resume may change."""


@dataclass(frozen=True)
class UpdateStats:
    """What one PPO update logs; one row of ``progress.csv``."""

    update: int  # 1-based count of updates done
    num_updates: int
    step: int  # env steps so far, over all envs
    lr: float
    mean_episode_reward: float  # mean over episodes that ended in this rollout; NaN if none
    episodes: int
    policy_loss: float
    value_loss: float
    entropy: float  # per slot
    action_std: float  # of the log-weights
    approx_kl: float
    clip_fraction: float
    steps_per_s: float


def check_resumable(
    checkpoint: Checkpoint, config: TrainConfig, scenario_name: str, actions_shape: tuple[int, ...]
) -> torch.Tensor:
    """The checkpoint's episode actions (S, E, N + 1), after checking it continues this run.

    Raises:
        SimcityError: the checkpoint is of another scenario, or its settings differ from
            ``config`` other than in `RESUMABLE_CHANGES`.
    """
    path, extra = checkpoint.path, checkpoint.extra
    saved = extra.get("train_config")
    if not isinstance(saved, dict):
        raise SimcityError("missing", file=path, field="extra.train_config")
    for key, value in config.as_dict().items():
        if key not in RESUMABLE_CHANGES and saved.get(key) != value:
            raise SimcityError(
                f"is {saved.get(key)!r} in the checkpoint but {value!r} now",
                file=path,
                field=f"train.{key}",
                expected="the settings of the run being resumed",
            )
    if extra.get("scenario") != scenario_name:
        raise SimcityError(
            f"is {extra.get('scenario')!r}",
            file=path,
            field="extra.scenario",
            expected=repr(scenario_name),
        )
    actions = extra.get("episode_actions")
    if not (isinstance(actions, torch.Tensor) and tuple(actions.shape) == actions_shape):
        raise SimcityError(
            "does not fit this scenario and step count",
            file=path,
            field="extra.episode_actions",
            expected=f"a tensor of shape {actions_shape}",
        )
    return actions


def tensorboard_writer(out_dir: Path) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``out_dir``, or None without the package installed."""
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out_dir))


def start_progress_file(path: Path, keep_through_update: int) -> None:
    """Start ``progress.csv`` afresh, keeping rows up to ``keep_through_update`` (a resume)."""
    rows: list[dict[str, str]] = []
    if keep_through_update > 0 and path.is_file():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["update"]) <= keep_through_update]
    names = [f.name for f in dataclasses.fields(UpdateStats)]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)


def append_progress(path: Path, stats: UpdateStats) -> None:
    """Add one update's row to ``progress.csv``."""
    with path.open("a", newline="") as f:
        csv.writer(f).writerow(dataclasses.astuple(stats))


def log_update(path: Path, board: Any, stats: UpdateStats) -> None:
    """Add one update's row to ``progress.csv`` and, with a TensorBoard ``board``, its scalars."""
    append_progress(path, stats)
    if board is not None:
        for name, value in dataclasses.asdict(stats).items():
            board.add_scalar(f"train/{name}", value, stats.step)
