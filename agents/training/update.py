"""The PPO update: epochs of shuffled minibatches of one rollout's batch (CleanRL's ``ppo.py``).

Shapes: M samples in one minibatch, S action slots credited separately.
"""

from __future__ import annotations

import torch

from agents.policies.attention import action_distribution
from agents.training.buffer import Batch
from agents.training.config import TrainConfig
from agents.training.credit import Credit
from agents.training.learner import Learner
from agents.training.ppo_math import PPOLoss, ppo_loss


def ppo_update(
    learner: Learner, batch: Batch, credit: Credit, config: TrainConfig, *, critic_only: bool
) -> PPOLoss:
    """Train ``learner`` on ``batch``; return the last minibatch's loss.

    With ``critic_only`` (the first updates after the teacher) only the value loss is
    followed, and the actor's parameters get no gradient: the critic catches up before the
    actor moves, and Adam takes no step and keeps no state for them.
    """
    model, optimizer = learner.model, learner.optimizer
    for _ in range(config.update_epochs):
        order = torch.randperm(batch.size)
        for start in range(0, batch.size, config.minibatch_size):
            mb = order[start : start + config.minibatch_size]  # (M,)
            output = learner(batch.nodes[mb], batch.globals_[mb])
            dist = action_distribution(output.logits, model.log_std)
            loss = ppo_loss(
                credit.log_probs(dist.log_prob(batch.actions[mb])).flatten(),  # (M * S,)
                batch.log_probs[mb].flatten(),
                batch.advantages[mb].flatten(),
                credit.values(output.value).flatten(),
                batch.values[mb].flatten(),
                batch.returns[mb].flatten(),
                credit.log_probs(dist.entropy()).flatten(),
                clip_coef=config.clip_coef,
                vf_coef=config.vf_coef,
                ent_coef=config.ent_coef,
                clip_value=config.clip_value,
                normalise_advantages=config.normalise_advantages,
            )
            optimizer.zero_grad()
            if critic_only:
                (config.vf_coef * loss.value).backward()
                for parameter in learner.actor:
                    parameter.grad = None
            else:
                loss.total.backward()
            torch.nn.utils.clip_grad_norm_(learner.trainable, config.max_grad_norm)
            optimizer.step()
    return loss
