"""`Learner`: the network PPO trains, the Adam that trains it, and the city graph it reads.

Shapes: B observations, N nodes, K neighbours per node, F node features, G global features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from agents.policies.attention import AttentionPolicy, PolicyOutput, count_flops_per_decision
from agents.policies.checkpoint import city_neighbours
from agents.training.config import TrainConfig
from simcity.city.graph import City


@dataclass(frozen=True)
class Learner:
    """The model being trained and what its updates need."""

    model: AttentionPolicy
    optimizer: torch.optim.Adam
    trainable: list[nn.Parameter]  # what Adam steps and the gradient clip bounds
    actor: list[nn.Parameter]  # the trainable parameters outside the value head
    neighbours: torch.Tensor  # (N, K) int64
    distances: torch.Tensor  # (N, K)
    flops_per_decision: int  # of one forward pass on one observation, billed by the env

    def __call__(self, nodes: torch.Tensor, globals_: torch.Tensor) -> PolicyOutput:
        """The model on nodes (B, N, F) and globals (B, G) of this city."""
        return self.model(nodes, globals_, self.neighbours, self.distances)

    def act(self, obs: dict[str, np.ndarray]) -> PolicyOutput:
        """The model on a vector env's observation (E envs)."""
        return self(torch.as_tensor(obs["nodes"]), torch.as_tensor(obs["globals"]))


def make_learner(model: AttentionPolicy, config: TrainConfig, city: City) -> Learner:
    """Adam (at ``config.ppo_lr``) over what ``config`` leaves trainable in ``model``."""
    if config.freeze_encoder:
        for module in (model.node_embed, model.global_embed, model.blocks):
            module.requires_grad_(False)
    if config.twins:  # its gradient cancels over a pair; minibatches would only add noise
        model.log_std.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    critic = {id(p) for p in model.value_head.parameters()}
    actor = [p for p in trainable if id(p) not in critic]
    optimizer = torch.optim.Adam(trainable, lr=config.ppo_lr, eps=1e-5)
    neighbours, distances = city_neighbours(city, config.model.num_neighbours)  # (N, K) x 2
    flops = count_flops_per_decision(model, city.num_nodes, neighbours, distances)
    return Learner(model, optimizer, trainable, actor, neighbours, distances, flops)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
