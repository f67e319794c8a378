"""Distillation: train a smaller (or pruned) policy to act like a trained one.

Shapes: T collected observations, M minibatch, N nodes, F node features, G global features.

Data. The teacher plays ``episodes`` days in the env (seeds ``seed + k``, all in the training
split of `agents.training.seeds`, so never a validation or test day); every observation is
kept with the teacher's logits and per-slot values. A share ``explore_share`` of the days play
actions sampled from the teacher's own logistic normal instead of its mean, so the student
also sees states a slightly imperfect copy would reach.

Loss. The env only sees ``softmax(logits)`` (`agents.policies.attention.mean_action`), so the
student matches the teacher's allocation: KL(teacher || student) over the N + 1 slots, plus
``value_weight`` times the mean squared error of the per-slot values (so the student can go
on training with PPO). The student's ``log_std`` is copied from the teacher.

Everything random (sampled actions, minibatch order, a fresh student's weights) draws from
generators seeded by ``seed``, so a distillation is reproducible bit for bit on one machine.

Cost. Both steps run on one torch thread (`agents.green.calibrate_cpu.torch_threads`): the
matrices are tiny (a 16-node city's minibatch is 32 x 16 rows), so a second thread buys no
speed, doubles the CPU time spent, and on a shared machine makes every op wait for a core the
other thread may not get. ``progress(stage, done, total)``, where given, is told after every
teacher day (stage "teacher days") and every epoch (stage "fit epochs").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from agents.green.calibrate_cpu import torch_threads
from agents.policies.attention import AttentionConfig, AttentionPolicy, mean_action, to_weights
from agents.policies.checkpoint import city_neighbours
from agents.training.fit import TeacherData, fit_to_allocations
from simcity.env import CityEnv
from simcity.errors import SimcityError

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: told how far a long step has got."""


@dataclass(frozen=True)
class DistillConfig:
    """How much teacher data to collect and how long to fit it."""

    episodes: int = 16
    explore_share: float = 0.5
    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    value_weight: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("episodes", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise SimcityError(
                    f"is {getattr(self, name)}", field=f"distill.{name}", expected=">= 1"
                )
        if not 0.0 <= self.explore_share <= 1.0:
            raise SimcityError(
                f"is {self.explore_share}", field="distill.explore_share", expected="in [0, 1]"
            )
        if not self.lr > 0.0:
            raise SimcityError(f"is {self.lr}", field="distill.lr", expected="> 0")


@dataclass(frozen=True)
class DistillResult:
    model: AttentionPolicy
    epoch_losses: list[float]  # mean loss per epoch
    num_samples: int


def fresh_student(config: AttentionConfig, seed: int) -> AttentionPolicy:
    """A new `AttentionPolicy` whose initial weights depend only on ``seed`` (the global
    torch generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AttentionPolicy(config)


def smaller_config(config: AttentionConfig) -> AttentionConfig:
    """The default student: half the width, heads and layers (at least 8, 1 and 1).

    >>> smaller_config(AttentionConfig(d_model=32, num_heads=4, num_layers=2)).d_model
    16
    """
    num_heads = max(1, config.num_heads // 2)
    d_model = max(8, config.d_model // 2)
    d_model -= d_model % num_heads
    return replace(
        config, d_model=d_model, num_heads=num_heads, num_layers=max(1, config.num_layers // 2)
    )


def collect_teacher_data(
    teacher: AttentionPolicy,
    env: CityEnv,
    config: DistillConfig,
    progress: Progress | None = None,
) -> TeacherData:
    """Play the teacher for ``config.episodes`` days; keep every observation and output."""
    with torch_threads(1):
        return _collect(teacher, env, config, progress)


def _collect(
    teacher: AttentionPolicy, env: CityEnv, config: DistillConfig, progress: Progress | None
) -> TeacherData:
    neighbours, distances = city_neighbours(env.city, teacher.config.num_neighbours)
    generator = torch.Generator().manual_seed(config.seed)
    num_explore = round(config.episodes * config.explore_share)
    nodes, globals_, logits, values = [], [], [], []
    teacher.eval()
    for k in range(config.episodes):
        obs, _ = env.reset(seed=config.seed + k)
        done = False
        while not done:
            x = torch.as_tensor(obs["nodes"], dtype=torch.float32).unsqueeze(0)  # (1, N, F)
            g = torch.as_tensor(obs["globals"], dtype=torch.float32).unsqueeze(0)  # (1, G)
            with torch.no_grad():
                out = teacher(x, g, neighbours, distances)
            nodes.append(x[0])
            globals_.append(g[0])
            logits.append(out.logits[0])
            values.append(out.value[0])
            if k < num_explore:
                noise = torch.randn(out.logits.shape, generator=generator)  # (1, N + 1)
                action = to_weights(out.logits + teacher.log_std.detach().exp() * noise)[0]
            else:
                action = mean_action(out.logits)[0]
            obs, _, terminated, truncated, _ = env.step(action.double().numpy())
            done = terminated or truncated
        if progress is not None:
            progress("teacher days", k + 1, config.episodes)
    return TeacherData(
        torch.stack(nodes), torch.stack(globals_), torch.stack(logits), torch.stack(values)
    )


def distill(
    teacher: AttentionPolicy,
    student: AttentionPolicy,
    env: CityEnv,
    config: DistillConfig,
    data: TeacherData | None = None,
    progress: Progress | None = None,
) -> DistillResult:
    """Fit ``student`` (trained in place, returned in eval mode) to ``teacher`` in ``env``.

    ``data`` reuses an earlier `collect_teacher_data`; the two must share the env's city.
    """
    if data is None:
        data = collect_teacher_data(teacher, env, config, progress)
    with torch_threads(1):
        return _fit(teacher, student, env, config, data, progress)


def _fit(
    teacher: AttentionPolicy,
    student: AttentionPolicy,
    env: CityEnv,
    config: DistillConfig,
    data: TeacherData,
    progress: Progress | None,
) -> DistillResult:
    neighbours, distances = city_neighbours(env.city, student.config.num_neighbours)
    generator = torch.Generator().manual_seed(config.seed + 1)
    with torch.no_grad():
        student.log_std.copy_(teacher.log_std.detach())
    student.log_std.requires_grad_(False)
    losses = fit_to_allocations(
        student,
        data,
        neighbours,
        distances,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        value_weight=config.value_weight,
        generator=generator,
        on_epoch=None
        if progress is None
        else lambda done, _loss, _optimizer: progress("fit epochs", done, config.epochs),
    )
    num_samples = data.nodes.shape[0]
    student.log_std.requires_grad_(True)
    return DistillResult(student.eval(), losses, num_samples)
