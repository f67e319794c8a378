"""`TrainConfig`: the settings of a PPO run (`agents.train`), checked when built."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from agents.attention import AttentionConfig
from simcity.errors import SimcityError


@dataclass(frozen=True)
class TrainConfig:
    """PPO settings; CleanRL's ``ppo_continuous_action.py`` defaults but for the learning
    rate, discount and GAE lambda, tuned on ``downtown`` (a higher rate: the per-slot
    ratios barely move at 3e-4; a short horizon: what monitoring saves it saves within
    the hour an incident lasts, and a longer one only adds noise)."""

    total_steps: int = 100_000  # env steps over all envs; rounded up to whole updates
    num_envs: int = 4
    num_steps: int = 96  # per env per rollout (one day of 15-min steps)
    lr: float = 3e-3  # annealed linearly to 0 over the run
    gamma: float = 0.8  # detection pays within the hour an incident lasts: ~5 steps
    gae_lambda: float = 0.8
    update_epochs: int = 4  # with the budget coupling: $121k vs $124k at 8 and std e^-1 (20k)
    num_minibatches: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    clip_value: bool = False  # targets are normalised by a running std instead
    normalise_advantages: bool = True
    node_credit: bool = True  # each slot's own cost and advantage (module doc); False: joint
    budget_coupling: bool = True  # with node_credit: what a node's share costs the others
    spill_credit: bool = False  # with budget_coupling: also what a node's units do nearby
    twins: bool = True  # env i + E/2 replays env i's day with mirrored noise (module doc)
    async_envs: bool = False  # envs in worker processes (AsyncVectorEnv), same results
    init_from: str | None = None  # checkpoint whose weights start the run (fine-tuning)
    freeze_encoder: bool = False  # train only the heads (and the action std)
    seed: int = 0
    checkpoint_every: int = 10  # updates; a checkpoint is also written at the end
    model: AttentionConfig = field(default_factory=AttentionConfig)

    def __post_init__(self) -> None:
        positive = ("total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches")
        for name in (*positive, "checkpoint_every"):
            if getattr(self, name) < 1:
                raise SimcityError(
                    f"is {getattr(self, name)}", field=f"train.{name}", expected=">= 1"
                )
        if self.batch_size % self.num_minibatches != 0:
            raise SimcityError(
                f"{self.num_minibatches} does not divide the batch of {self.batch_size}",
                field="train.num_minibatches",
                expected="a divisor of num_envs * num_steps",
            )
        if self.seed < 0:
            raise SimcityError(f"is {self.seed}", field="train.seed", expected=">= 0")
        if self.spill_credit and not (self.node_credit and self.budget_coupling):
            raise SimcityError(
                "is on, but it extends the budget coupling of per-node credit",
                field="train.spill_credit",
                expected="node_credit and budget_coupling on too, or spill_credit off",
            )
        if self.twins and self.num_envs % 2:
            raise SimcityError(
                f"is {self.num_envs}", field="train.num_envs", expected="even with twins"
            )

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        return math.ceil(self.total_steps / self.batch_size)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (the model config nested), safe for ``weights_only`` checkpoints."""
        return dataclasses.asdict(self)
