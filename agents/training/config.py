"""`TrainConfig`: the settings of a PPO run (`agents.training.train`), checked when built."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from agents.policies.attention import AttentionConfig
from agents.policies.teacher import TEACHER_GAIN
from simcity.errors import SimcityError

TWIN_BASELINES = ("first_step", "every_step")


@dataclass(frozen=True)
class TeacherConfig:
    """Learning from the teacher before PPO (`agents.training.teacher`); ``days`` 0: none.

    The posterior heuristic plays ``days`` days labelled by the teacher, then the student
    plays ``dagger_days`` more in each of ``dagger_rounds`` rounds (DAgger); each fit runs
    ``epochs`` epochs (a DAgger refit half as many) of Adam at ``lr``.
    """

    days: int = 24
    dagger_rounds: int = 1
    dagger_days: int = 16
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    critic_updates: int = 10
    """PPO updates after the teacher that train only the value head."""
    ppo_lr: float = 2e-4
    """PPO's learning rate after the teacher, in place of `TrainConfig.lr`: from the
    teacher's 51.2% of the gap on downtown, 20k steps kept 51.8% at 2e-4, 49.3% at 5e-4
    and 46.6% at 3e-3 (24 held-out days)."""
    gain: float = TEACHER_GAIN
    """The teacher's log likelihood ratio per unit of CUSUM evidence."""

    def __post_init__(self) -> None:
        for name in ("days", "dagger_rounds", "dagger_days", "critic_updates"):
            if getattr(self, name) < 0:
                raise SimcityError(
                    f"is {getattr(self, name)}", field=f"train.teacher.{name}", expected=">= 0"
                )
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise SimcityError(
                    f"is {getattr(self, name)}", field=f"train.teacher.{name}", expected=">= 1"
                )
        for name in ("lr", "ppo_lr", "gain"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise SimcityError(
                    f"is {value}", field=f"train.teacher.{name}", expected="a number > 0"
                )

    @property
    def enabled(self) -> bool:
        return self.days > 0


@dataclass(frozen=True)
class TrainConfig:
    """PPO settings; CleanRL's ``ppo_continuous_action.py`` defaults but for the learning
    rate, discount and GAE lambda, tuned on ``downtown`` (a higher rate: the per-slot
    ratios barely move at 3e-4; a short horizon: what monitoring saves it saves within
    the hour an incident lasts, and a longer one only adds noise)."""

    total_steps: int = 20_480  # env steps over all envs; rounded up to whole updates
    num_envs: int = 4
    num_steps: int = 96  # per env per rollout (one day of 15-min steps)
    lr: float = 3e-3  # annealed linearly to 0 over the run (teacher.ppo_lr after a teacher)
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
    twin_baseline: str = "every_step"
    """Where a twin's advantage is taken less its pair's (`agents.training.credit`): on
    ``"every_step"``, or on the ``"first_step"`` of each day only, where the twins share
    their state and the baseline is exact. Later their states differ and the difference is
    biased, but only to second order, and it removes most of the advantages' variance: on
    ``tiny`` it trained the better policy (the measurement in `agents.training.credit`)."""
    async_envs: bool = False  # envs in worker processes (AsyncVectorEnv), same results
    init_from: str | None = None  # checkpoint whose weights start the run (no teacher then)
    freeze_encoder: bool = False  # train only the heads (and the action std)
    seed: int = 0
    carbon_weights: tuple[float, ...] = ()
    """Carbon weights to train over: each episode's reward ``carbon_weight`` is drawn from
    them (by the seeds: reproducible; twins share it), and the observation shows it, so one
    network learns the service-carbon front (`agents.training.rollout.episode_carbon_weight`).
    Empty: the scenario's weight every episode."""
    checkpoint_every: int = 10  # updates; a checkpoint is also written at the end
    model: AttentionConfig = field(default_factory=AttentionConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)  # days 0: PPO alone

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
        for weight in self.carbon_weights:
            if not (math.isfinite(weight) and weight >= 0.0):
                raise SimcityError(
                    f"has {weight}", field="train.carbon_weights", expected="numbers >= 0"
                )
        if self.twin_baseline not in TWIN_BASELINES:
            raise SimcityError(
                f"is {self.twin_baseline!r}",
                field="train.twin_baseline",
                expected=" or ".join(repr(b) for b in TWIN_BASELINES),
            )
        if self.twins and self.num_envs % 2:
            raise SimcityError(
                f"is {self.num_envs}", field="train.num_envs", expected="even with twins"
            )

    @property
    def learns_from_teacher(self) -> bool:
        """A teacher runs first: it is enabled and the network is fresh (no ``init_from``)."""
        return self.teacher.enabled and self.init_from is None

    @property
    def ppo_lr(self) -> float:
        """The learning rate PPO starts from: the teacher's ``ppo_lr`` after a teacher."""
        return self.teacher.ppo_lr if self.learns_from_teacher else self.lr

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
