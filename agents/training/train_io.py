"""What a training run reads and writes besides the model: progress rows, logs, resumes."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from agents.policies.checkpoint import Checkpoint
from agents.training.state_checks import check_tensor, same_settings
from simcity.errors import SimcityError
from simcity.safe_io import check_output_file, decode_utf8, excerpt, read_bytes

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
    check_same_run(saved, config, file=path, field="train")
    scenario = extra.get("scenario")
    if not (isinstance(scenario, str) and scenario == scenario_name):
        raise SimcityError(
            f"is {excerpt(scenario)}",
            file=path,
            field="extra.scenario",
            expected=repr(scenario_name),
        )
    return check_tensor(
        extra.get("episode_actions"),
        actions_shape,
        torch.float32,
        file=path,
        field="extra.episode_actions",
    )


def check_same_run(saved: dict[str, Any], config: TrainConfig, *, file: Path, field: str) -> None:
    """Raise `SimcityError` unless stored settings ``saved`` are ``config``'s, but for
    `RESUMABLE_CHANGES`."""
    for key, value in config.as_dict().items():
        if key not in RESUMABLE_CHANGES and not same_settings(saved.get(key), value):
            raise SimcityError(
                f"is {excerpt(saved.get(key))} in the checkpoint but {excerpt(value)} now",
                file=file,
                field=f"{field}.{key}",
                expected="the settings of the run being resumed",
            )


def tensorboard_writer(out_dir: Path) -> Any:
    """A TensorBoard ``SummaryWriter`` on ``out_dir``, or None without the package installed."""
    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out_dir))


def start_progress_file(path: Path, keep_through_update: int) -> None:
    """Start ``progress.csv`` afresh, keeping rows up to ``keep_through_update`` (a resume).

    The file is never truncated in place: the kept rows are written to a file beside it,
    synced, and renamed onto it, so a kill at any moment leaves the old history or the new
    one. A torn last row (a kill mid-append) is dropped; any other malformed row is an error.
    """
    check_output_file(path, expected="progress.csv, a regular file")
    names = [f.name for f in dataclasses.fields(UpdateStats)]
    rows: list[list[str]] = []
    if keep_through_update > 0 and path.exists():
        rows = [r for r in read_progress(path, names) if int(r[0]) <= keep_through_update]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    writer.writerows(rows)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as tmp:
            tmp.write(buffer.getvalue())
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def read_progress(path: Path, names: list[str]) -> list[list[str]]:
    """The rows of ``progress.csv`` (a torn last row dropped), checked: the header is
    ``names``, every row has one number per column and the updates increase."""
    expected = "a progress.csv written by `simcity train`"
    text = decode_utf8(read_bytes(path, expected=expected), file=path, expected=expected)
    lines = list(csv.reader(io.StringIO(text)))
    if not lines or lines[0] != names:
        raise SimcityError(
            f"has header {excerpt(lines[0] if lines else '')}",
            file=path,
            field="header",
            expected=",".join(names),
        )
    rows: list[list[str]] = []
    for number, row in enumerate(lines[1:], start=2):
        if not _is_progress_row(row, len(names)):
            if number == len(lines):  # torn by a kill mid-append: that update is redone
                break
            raise SimcityError(
                f"is {excerpt(','.join(row))}",
                file=path,
                field=f"line {number}",
                expected=f"{len(names)} numbers",
            )
        if rows and int(row[0]) <= int(rows[-1][0]):
            raise SimcityError(
                f"repeats or goes back to update {row[0]}",
                file=path,
                field=f"line {number}",
                expected="increasing updates",
            )
        rows.append(row)
    return rows


def _is_progress_row(row: list[str], width: int) -> bool:
    if len(row) != width:
        return False
    try:
        update = int(row[0])
        [float(cell) for cell in row]
    except ValueError:
        return False
    return update >= 1


def _sync_folder(folder: Path) -> None:
    """fsync ``folder`` so a rename in it survives a crash (where the OS allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_progress(path: Path, stats: UpdateStats) -> None:
    """Add one update's row to ``progress.csv``, synced: append only, never a rewrite."""
    with path.open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(dataclasses.astuple(stats))
        f.flush()
        os.fsync(f.fileno())


def log_update(path: Path, board: Any, stats: UpdateStats) -> None:
    """Add one update's row to ``progress.csv`` and, with a TensorBoard ``board``, its scalars."""
    append_progress(path, stats)
    if board is not None:
        for name, value in dataclasses.asdict(stats).items():
            board.add_scalar(f"train/{name}", value, stats.step)


def describe_plan(config: TrainConfig, asked_steps: int) -> tuple[str, str | None]:
    r"""What a run of ``config`` will do, in one line, and a warning when it is too short to
    change the policy (every PPO update a critic-only warm-up after the teacher).

    >>> from agents.training.config import TrainConfig
    >>> plan, warning = describe_plan(TrainConfig(total_steps=2048), 2048)
    >>> print(plan.replace(" (", "\n(").replace("; ", ";\n"))
    plan: 24 teacher days
    (+16 DAgger), then 6 PPO updates of 384 steps = 2,304 env steps
    (asked 2,048, rounded up to whole rollouts);
    the first 10 updates train only the critic
    >>> print(warning.replace(", so", ",\nso").replace("; ", ";\n"))
    too short: all 6 PPO updates are the critic-only warm-up,
    so the policy stays the teacher's;
    use --steps above 3,840 (11 updates or more)
    """
    teacher = config.teacher
    steps = config.num_updates * config.batch_size
    parts = ["plan: "]
    if config.learns_from_teacher:
        dagger = teacher.dagger_rounds * teacher.dagger_days
        parts.append(f"{teacher.days} teacher days" + (f" (+{dagger} DAgger)" if dagger else ""))
        parts.append(", then ")
    parts.append(
        f"{config.num_updates} PPO updates of {config.batch_size:,} steps = {steps:,} env steps"
    )
    if steps != asked_steps:
        parts.append(f" (asked {asked_steps:,}, rounded up to whole rollouts)")
    warm_up = teacher.critic_updates if config.learns_from_teacher else 0
    if warm_up:
        parts.append(f"; the first {warm_up} updates train only the critic")
    warning = None
    if config.num_updates <= warm_up:
        warning = (
            f"too short: all {config.num_updates} PPO updates are the critic-only warm-up, so "
            f"the policy stays the teacher's; use --steps above {warm_up * config.batch_size:,} "
            f"({warm_up + 1} updates or more)"
        )
    return "".join(parts), warning


def describe_resume(config: TrainConfig, planned_steps: int, file_name: str) -> tuple[str, bool]:
    r"""What resuming ``file_name`` (planned for ``planned_steps``) with ``config`` does, and
    whether that is the run an uninterrupted ``config`` would make.

    >>> from agents.training.config import TrainConfig
    >>> describe_resume(TrainConfig(total_steps=2048), 2048, "checkpoint.pt")[1]
    True
    >>> text, same = describe_resume(TrainConfig(total_steps=4096), 2048, "checkpoint.pt")
    >>> same
    False
    >>> print(text.replace("; ", ";\n").replace(", so", ",\nso"))
    a new plan: the checkpoint planned 6 updates (2,048 steps);
    the learning-rate schedule is re-planned over 11 updates,
    so this is not the same as an uninterrupted run
    """
    planned = dataclasses.replace(config, total_steps=planned_steps).num_updates
    if planned == config.num_updates:
        return (
            f"continues the planned run of {planned} updates from {file_name}, exactly as "
            "if uninterrupted",
            True,
        )
    if file_name != "checkpoint.pt":  # the teacher stage: PPO's schedule not begun yet
        return (
            f"a new plan: {config.num_updates} PPO updates where the teacher checkpoint "
            f"planned {planned}; PPO has not started, so the run is the same as an "
            f"uninterrupted one of {config.num_updates} updates",
            True,
        )
    return (
        f"a new plan: the checkpoint planned {planned} updates ({planned_steps:,} steps); "
        f"the learning-rate schedule is re-planned over {config.num_updates} updates, so "
        "this is not the same as an uninterrupted run",
        False,
    )
