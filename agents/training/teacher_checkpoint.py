"""Checkpoints of the teacher stage (``teacher.pt``), so a kill there loses little.

The teacher stage of a run (`agents.training.teacher`) takes minutes on a city the size of
``downtown`` and writes no PPO checkpoint. `TeacherCheckpoints` writes its progress
(`agents.training.teacher.TeacherProgress`: the days labelled so far and their samples, the
student's weights, the fit's epochs, Adam and minibatch-generator states, torch's RNG
state) atomically to ``out_dir/teacher.pt`` at the first point the stage could resume from
once ``interval_s`` seconds have passed since the last write, and always when the stage
ends. A kill anywhere in the stage so loses at most one interval plus one day or epoch.

`load_teacher` restores it: the resumed stage ends with the same weights, bit for bit, as
one never stopped, and the run's first PPO checkpoint makes the file obsolete (the trainer
then removes it).

T labelled steps, N nodes, F node and G global features.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from agents.policies.attention import AttentionPolicy
from agents.policies.checkpoint import save_torch_atomic
from agents.policies.checks import (
    check_dict,
    check_int,
    check_like,
    check_model_config,
    check_number,
    read_torch_file,
)
from agents.training.config import TrainConfig
from agents.training.state_checks import (
    check_rng_state,
    check_tensor,
    load_optimizer_state,
    set_generator_state,
)
from agents.training.teacher import TeacherProgress, teacher_rounds
from agents.training.train_io import check_same_run
from simcity.errors import SimcityError
from simcity.safe_io import excerpt

TEACHER_NAME = "teacher.pt"
TEACHER_FORMAT = "simcity-teacher/1"
TEACHER_CHECKPOINT_S = 30.0
"""Default seconds between teacher checkpoints (each holds every sample labelled so far:
about 55 MB on ``downtown`` at the end of the stage)."""
EXPECTED = "a teacher.pt written by `simcity train`"
_KEYS = (
    "format",
    "model_config",
    "train_config",
    "scenario",
    "state_dict",
    "round",
    "days_done",
    "epochs_done",
    "nodes",
    "globals",
    "targets",
    "losses",
    "epoch_losses",
    "fit_optimizer",
    "generator_state",
    "rng_state",
)


class TeacherCheckpoints:
    """Writes the teacher stage's progress to ``path`` every ``interval_s`` seconds at most
    (0: at every point it could resume from), and when told the stage is done."""

    def __init__(
        self,
        path: Path,
        model: AttentionPolicy,
        config: TrainConfig,
        scenario_name: str,
        num_nodes: int,
        interval_s: float = TEACHER_CHECKPOINT_S,
    ) -> None:
        self.path = path
        self.model = model
        self.config = config
        self.scenario_name = scenario_name
        self.num_nodes = num_nodes
        self.interval_s = interval_s
        self.last_s = time.monotonic()

    def __call__(
        self, progress: TeacherProgress, generator: torch.Generator, done: bool = False
    ) -> None:
        if done or time.monotonic() - self.last_s >= self.interval_s:
            self.write(progress, generator)

    def write(self, progress: TeacherProgress, generator: torch.Generator) -> None:
        """Write ``progress`` now, atomically."""
        N, c = self.num_nodes, self.config.model
        stacked = [torch.stack(p) for p in zip(*progress.samples, strict=True)]
        nodes, globals_, targets = stacked or (
            torch.zeros(0, N, c.num_node_features),
            torch.zeros(0, c.num_global_features),
            torch.zeros(0, N * c.num_tiers + 1),
        )
        payload = {
            "format": TEACHER_FORMAT,
            "model_config": dataclasses.asdict(c),
            "train_config": self.config.as_dict(),
            "scenario": self.scenario_name,
            "state_dict": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "round": progress.round,
            "days_done": progress.days_done,
            "epochs_done": progress.epochs_done,
            "nodes": nodes,
            "globals": globals_,
            "targets": targets,
            "losses": list(progress.losses),
            "epoch_losses": list(progress.epoch_losses),
            "fit_optimizer": progress.fit_optimizer,
            "generator_state": generator.get_state(),
            "rng_state": torch.get_rng_state(),
        }
        save_torch_atomic(payload, self.path)
        self.last_s = time.monotonic()


def load_teacher(
    path: Path,
    model: AttentionPolicy,
    config: TrainConfig,
    scenario_name: str,
    num_nodes: int,
    day_len: int,
) -> TeacherProgress:
    """Check the teacher checkpoint ``path`` against this run, load its weights into
    ``model`` and its RNG state into torch, and return where the stage stopped.

    Raises:
        SimcityError: naming the file and the field, for a file of another run or scenario,
            or any field that is missing, of the wrong type or shape, or not finite.
    """
    raw = check_dict(
        read_torch_file(path, expected=EXPECTED, kind="teacher checkpoint"),
        file=path,
        field="teacher checkpoint",
    )
    for key in _KEYS:
        if key not in raw:
            raise SimcityError("missing", file=path, field=key, expected=EXPECTED)
    if not isinstance(raw["format"], str) or raw["format"] != TEACHER_FORMAT:
        raise SimcityError(
            f"is {excerpt(raw['format'])}", file=path, field="format", expected=TEACHER_FORMAT
        )
    if check_model_config(raw["model_config"], file=path) != config.model:
        raise SimcityError(
            f"is {excerpt(raw['model_config'], 200)}",
            file=path,
            field="model_config",
            expected=str(dataclasses.asdict(config.model)),
        )
    check_same_run(
        check_dict(raw["train_config"], file=path, field="train_config"),
        config,
        file=path,
        field="train",
    )
    if not (isinstance(raw["scenario"], str) and raw["scenario"] == scenario_name):
        raise SimcityError(
            f"is {excerpt(raw['scenario'])}",
            file=path,
            field="scenario",
            expected=repr(scenario_name),
        )
    check_like(model.state_dict(), raw["state_dict"], file=path, field="state_dict")
    progress = _check_progress(raw, config, path, num_nodes, day_len)
    generator_state = check_rng_state(
        raw["generator_state"], torch.Generator().get_state(), file=path, field="generator_state"
    )
    check_rng_state(raw["rng_state"], torch.get_rng_state(), file=path, field="rng_state")
    if raw["fit_optimizer"] is not None:
        trainable = [p for p in model.parameters() if p.requires_grad]
        check = torch.optim.Adam(trainable, lr=config.teacher.lr)
        load_optimizer_state(check, raw["fit_optimizer"], file=path, field="fit_optimizer")
    # Checked: now restore.
    model.load_state_dict(raw["state_dict"])
    set_generator_state(torch.default_generator, raw["rng_state"], file=path, field="rng_state")
    progress.generator_state = generator_state
    progress.fit_optimizer = raw["fit_optimizer"]
    return progress


def _check_progress(
    raw: dict[str, Any], config: TrainConfig, path: Path, num_nodes: int, day_len: int
) -> TeacherProgress:
    """The counters, samples and losses of ``raw``, consistent with the run's rounds."""
    rounds = teacher_rounds(config.teacher)
    round_ = check_int(raw["round"], file=path, field="round", high=len(rounds))
    days, epochs = rounds[round_] if round_ < len(rounds) else (0, 0)
    days_done = check_int(raw["days_done"], file=path, field="days_done", high=days)
    epochs_done = check_int(raw["epochs_done"], file=path, field="epochs_done", high=epochs)
    if epochs_done and days_done < days:
        raise SimcityError(
            f"is {epochs_done} with {days_done} of {days} days labelled",
            file=path,
            field="epochs_done",
            expected="0 until the round's days are all labelled",
        )
    if (raw["fit_optimizer"] is None) != (epochs_done == 0):
        raise SimcityError(
            f"is {type(raw['fit_optimizer']).__name__} after {epochs_done} epochs",
            file=path,
            field="fit_optimizer",
            expected="None before the fit's first epoch, an Adam state after it",
        )
    # A finished stage keeps no samples: PPO needs only the weights.
    T = (sum(d for d, _ in rounds[:round_]) + days_done) * day_len if round_ < len(rounds) else 0
    c = config.model
    nodes = check_tensor(
        raw["nodes"],
        (T, num_nodes, c.num_node_features),
        torch.float32,
        file=path,
        field="nodes",
    )
    globals_ = check_tensor(
        raw["globals"], (T, c.num_global_features), torch.float32, file=path, field="globals"
    )
    targets = check_tensor(
        raw["targets"],
        (T, num_nodes * c.num_tiers + 1),
        torch.float32,
        file=path,
        field="targets",
    )
    losses = _check_losses(raw["losses"], round_, path, "losses")
    epoch_losses = _check_losses(raw["epoch_losses"], epochs_done, path, "epoch_losses")
    return TeacherProgress(
        round=round_,
        days_done=days_done,
        epochs_done=epochs_done,
        samples=list(zip(nodes.unbind(0), globals_.unbind(0), targets.unbind(0), strict=True)),
        losses=losses,
        epoch_losses=epoch_losses,
    )


def _check_losses(raw: Any, length: int, path: Path, field: str) -> list[float]:
    if not isinstance(raw, list) or len(raw) != length:
        raise SimcityError(
            f"is {excerpt(raw)}", file=path, field=field, expected=f"a list of {length} numbers"
        )
    return [check_number(v, file=path, field=f"{field}[{i}]") for i, v in enumerate(raw)]
