"""Distillation: train a smaller (or pruned) policy to act like a trained one.

Shapes: T collected observations, M minibatch, N nodes, F node features, G global features.

Data. The teacher plays ``episodes`` days in the env (seeds ``seed + k``, all below
`agents.evaluate.HELD_OUT_SEED_BASE`, so never an evaluation day); every observation is kept
with the teacher's logits and per-slot values. A share ``explore_share`` of the days play
actions sampled from the teacher's own logistic normal instead of its mean, so the student
also sees states a slightly imperfect copy would reach.

Loss. The env only sees ``softmax(logits)`` (`agents.attention.mean_action`), so the student
matches the teacher's allocation: KL(teacher || student) over the N + 1 slots, plus
``value_weight`` times the mean squared error of the per-slot values (so the student can go
on training with PPO). The student's ``log_std`` is copied from the teacher.

Everything random (sampled actions, minibatch order, a fresh student's weights) draws from
generators seeded by ``seed``, so a distillation is reproducible bit for bit on one machine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch.nn import functional

from agents.attention import AttentionConfig, AttentionPolicy, mean_action, to_weights
from agents.checkpoint import city_neighbours
from simcity.env import CityEnv
from simcity.errors import SimcityError


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
class TeacherData:
    """What the teacher saw and said: nodes (T, N, F), globals (T, G), logits and values
    (T, N + 1)."""

    nodes: torch.Tensor
    globals_: torch.Tensor
    logits: torch.Tensor
    values: torch.Tensor


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
    teacher: AttentionPolicy, env: CityEnv, config: DistillConfig
) -> TeacherData:
    """Play the teacher for ``config.episodes`` days; keep every observation and output."""
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
    return TeacherData(
        torch.stack(nodes), torch.stack(globals_), torch.stack(logits), torch.stack(values)
    )


def distillation_loss(
    student_logits: torch.Tensor,
    student_values: torch.Tensor,
    teacher_logits: torch.Tensor,
    teacher_values: torch.Tensor,
    value_weight: float,
) -> torch.Tensor:
    """KL(teacher || student) of the allocations (M, N + 1), plus weighted value MSE.

    >>> z = torch.tensor([[0.0, 1.0, 2.0]])
    >>> float(distillation_loss(z, z, z + 5.0, z, 1.0))  # a shift leaves the allocation
    0.0
    """
    teacher_log_p = functional.log_softmax(teacher_logits, dim=-1)  # (M, N + 1)
    student_log_p = functional.log_softmax(student_logits, dim=-1)  # (M, N + 1)
    kl = (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(dim=-1).mean()
    return kl + value_weight * functional.mse_loss(student_values, teacher_values)


def fit_to_allocations(
    student: AttentionPolicy,
    data: TeacherData,
    neighbours: torch.Tensor,
    distances: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    value_weight: float,
    generator: torch.Generator,
) -> list[float]:
    """Fit ``student`` (in place, left in eval mode) to ``data`` by `distillation_loss`:
    epochs of Adam over minibatches in ``generator``'s order; the mean loss per epoch."""
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    num_samples = data.nodes.shape[0]
    losses = []
    student.train()
    for _ in range(epochs):
        order = torch.randperm(num_samples, generator=generator)
        total = 0.0
        for start in range(0, num_samples, batch_size):
            batch = order[start : start + batch_size]  # (M,)
            out = student(data.nodes[batch], data.globals_[batch], neighbours, distances)
            loss = distillation_loss(
                out.logits, out.value, data.logits[batch], data.values[batch], value_weight
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / num_samples)
    student.eval()
    return losses


def distill(
    teacher: AttentionPolicy,
    student: AttentionPolicy,
    env: CityEnv,
    config: DistillConfig,
    data: TeacherData | None = None,
) -> DistillResult:
    """Fit ``student`` (trained in place, returned in eval mode) to ``teacher`` in ``env``.

    ``data`` reuses an earlier `collect_teacher_data`; the two must share the env's city.
    """
    if data is None:
        data = collect_teacher_data(teacher, env, config)
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
    )
    num_samples = data.nodes.shape[0]
    student.log_std.requires_grad_(True)
    return DistillResult(student.eval(), losses, num_samples)
