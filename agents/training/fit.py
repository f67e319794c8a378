"""Supervised fits of an attention policy to another's allocations (distillation, teacher).

T samples, N nodes, F node features, G global features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional

from agents.policies.attention import AttentionPolicy


@dataclass(frozen=True)
class TeacherData:
    """What the teacher saw and said: nodes (T, N, F), globals (T, G), logits and values
    (T, N + 1)."""

    nodes: torch.Tensor
    globals_: torch.Tensor
    logits: torch.Tensor
    values: torch.Tensor


@dataclass(frozen=True)
class FitResume:
    """Where a stopped fit resumes: epochs done and its Adam's state (checked by the caller)."""

    epochs_done: int
    optimizer_state: dict[str, Any]


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
    resume: FitResume | None = None,
    on_epoch: Callable[[int, float, torch.optim.Adam], None] | None = None,
) -> list[float]:
    """Fit ``student`` (in place, left in eval mode) to ``data`` by `distillation_loss`:
    epochs of Adam over minibatches in ``generator``'s order; the mean loss per epoch run.

    ``resume`` continues a fit stopped after some epochs (``student`` and ``generator``
    restored to that point by the caller), bit for bit; ``on_epoch(epochs done, loss,
    optimizer)`` is called after every epoch, so the caller can checkpoint.
    """
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    first_epoch = 0
    if resume is not None:
        optimizer.load_state_dict(resume.optimizer_state)
        first_epoch = resume.epochs_done
    num_samples = data.nodes.shape[0]
    losses = []
    student.train()
    for epoch in range(first_epoch, epochs):
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
        if on_epoch is not None:
            on_epoch(epoch + 1, losses[-1], optimizer)
    student.eval()
    return losses
