"""Graph-local attention policy: a PPO actor-critic whose cost grows linearly with the city.

Dims, named once: B batch, N nodes, F node features, G global features, D model width,
H heads, K neighbours, L layers (Dh = D / H per head).

Tokens. Each node is one token: ``Linear(F -> D)`` of its features plus ``Linear(G -> D)`` of
the globals, broadcast to every node (no separate global token, so every attention row
stays local and the cost stays O(N K D)).

Attention. Node i attends only to its K nearest nodes by graph distance, given as
``neighbours`` (N, K) int64 and ``distances`` (N, K) float (see `graph_neighbours`; the node
itself comes first at distance 0). A small MLP maps ``log1p(distance)`` to one additive bias
per head, so each head learns how fast its attention falls off with distance. Keys and
values are gathered explicitly, (B, N, K, H, Dh), and combined with einsum, so
`torch.utils.flop_counter.FlopCounterMode` sees every multiply-add. Padding slots (a node
repeated as its own neighbour after slot 0, used when fewer than K nodes are reachable) are
masked out so an isolated node does not attend to itself K times.

Heads. One allocation logit per node; the mean of the node tokens (a size-agnostic pool)
gives the "unused" logit and the critic's value. No weight depends on N.

Actions. `action_distribution` turns logits (B, N + 1) into a Dirichlet over the N + 1
slots, concentration ``softplus(logit) + min_concentration``: samples are non-negative
weights on the simplex, exactly what `simcity.env.CityEnv` expects (only ratios matter).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.distributions import Dirichlet
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class AttentionConfig:
    """Sizes of an `AttentionPolicy`; none depends on the number of nodes."""

    num_node_features: int = 12
    num_global_features: int = 7
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    num_neighbours: int = 16
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads != 0:
            raise ValueError(
                f"d_model {self.d_model} must be divisible by num_heads {self.num_heads}"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads


class PolicyOutput(NamedTuple):
    """What one forward pass returns."""

    logits: torch.Tensor  # (B, N + 1), last = "unused" slot
    value: torch.Tensor  # (B,)
    attention: torch.Tensor  # (B, L, H, N, K), each row sums to 1 over K


class DistanceBias(nn.Module):
    """Additive attention bias per head from graph distance: MLP(log1p(distance))."""

    def __init__(self, num_heads: int, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.GELU(), nn.Linear(hidden, num_heads))

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        """Bias (H, N, K) for distances (N, K)."""
        bias = self.net(torch.log1p(distances.clamp_min(0.0)).unsqueeze(-1))  # (N, K, H)
        return bias.permute(2, 0, 1)  # (H, N, K)


class NeighbourhoodAttention(nn.Module):
    """Multi-head attention in which node i sees only the K nodes in ``neighbours[i]``."""

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.bias = DistanceBias(config.num_heads)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed tokens (B, N, D) and attention weights (B, H, N, K)."""
        B, N, D = x.shape
        H, Dh = self.num_heads, self.head_dim
        q, k, v = self.qkv(x).view(B, N, 3, H, Dh).unbind(dim=2)  # each (B, N, H, Dh)
        k_nb = k[:, neighbours]  # (B, N, K, H, Dh)
        v_nb = v[:, neighbours]  # (B, N, K, H, Dh)
        scores = torch.einsum("bnhd,bnkhd->bhnk", q, k_nb) / math.sqrt(Dh)  # (B, H, N, K)
        scores = scores + self.bias(distances)  # (H, N, K) broadcast over B
        scores = scores.masked_fill(mask, float("-inf"))  # (N, K) broadcast
        attention = torch.softmax(scores, dim=-1)  # (B, H, N, K)
        mixed = torch.einsum("bhnk,bnkhd->bnhd", self.dropout(attention), v_nb)  # (B, N, H, Dh)
        return self.proj(mixed.reshape(B, N, D)), attention


class Block(nn.Module):
    """Pre-norm transformer block with neighbourhood attention."""

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(config.d_model)
        self.attention = NeighbourhoodAttention(config)
        self.norm_mlp = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model),
            nn.GELU(),
            nn.Linear(4 * config.d_model, config.d_model),
            nn.Dropout(config.dropout),
        )

    def forward(
        self, x: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens (B, N, D) and attention weights (B, H, N, K)."""
        mixed, attention = self.attention(self.norm_attention(x), neighbours, distances, mask)
        x = x + mixed  # (B, N, D)
        x = x + self.mlp(self.norm_mlp(x))  # (B, N, D)
        return x, attention


class AttentionPolicy(nn.Module):
    """Actor-critic over node tokens with graph-local attention; runs on any N."""

    def __init__(self, config: AttentionConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else AttentionConfig()
        c = self.config
        self.node_embed = nn.Linear(c.num_node_features, c.d_model)
        self.global_embed = nn.Linear(c.num_global_features, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.node_head = nn.Linear(c.d_model, 1)
        self.unused_head = nn.Linear(c.d_model, 1)
        self.value_head = nn.Sequential(
            nn.Linear(c.d_model, c.d_model), nn.GELU(), nn.Linear(c.d_model, 1)
        )

    def forward(
        self,
        nodes: torch.Tensor,
        globals_: torch.Tensor,
        neighbours: torch.Tensor,
        distances: torch.Tensor,
    ) -> PolicyOutput:
        """Logits (B, N + 1), value (B,) and attention (B, L, H, N, K).

        Args:
            nodes: (B, N, F) node features.
            globals_: (B, G) global features.
            neighbours: (N, K) int64, row i = node i's neighbours, itself first.
            distances: (N, K) graph distances matching ``neighbours``.
        """
        c = self.config
        B, N, num_features = nodes.shape
        if num_features != c.num_node_features or globals_.shape != (B, c.num_global_features):
            raise ValueError(
                f"nodes {tuple(nodes.shape)} / globals {tuple(globals_.shape)}; expected "
                f"(B, N, {c.num_node_features}) / (B, {c.num_global_features})"
            )
        if neighbours.ndim != 2 or neighbours.shape[0] != N or distances.shape != neighbours.shape:
            raise ValueError(
                f"neighbours {tuple(neighbours.shape)} / distances {tuple(distances.shape)}; "
                f"expected both (N={N}, K)"
            )
        neighbours = neighbours.to(device=nodes.device, dtype=torch.long)
        distances = distances.to(device=nodes.device, dtype=nodes.dtype)
        mask = padding_mask(neighbours)  # (N, K)

        x = self.node_embed(nodes) + self.global_embed(globals_).unsqueeze(1)  # (B, N, D)
        attentions = []
        for block in self.blocks:
            x, attention = block(x, neighbours, distances, mask)  # (B, N, D), (B, H, N, K)
            attentions.append(attention)
        x = self.norm(x)  # (B, N, D)
        pooled = x.mean(dim=1)  # (B, D)
        node_logits = self.node_head(x).squeeze(-1)  # (B, N)
        unused_logit = self.unused_head(pooled)  # (B, 1)
        logits = torch.cat([node_logits, unused_logit], dim=1)  # (B, N + 1)
        value = self.value_head(pooled).squeeze(-1)  # (B,)
        return PolicyOutput(logits, value, torch.stack(attentions, dim=1))  # (B, L, H, N, K)

    @staticmethod
    def graph_neighbours(
        tail: np.ndarray, head: np.ndarray, weight: np.ndarray, num_nodes: int, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each node's K nearest nodes (itself first) by undirected shortest-path distance.

        Returns ``neighbours`` (N, K) int64 and ``distances`` (N, K) float32, each row sorted
        by (distance, node id). Rows with fewer than K reachable nodes are padded with the
        node itself at distance 0 (masked out by the policy).

        A Dijkstra from every source that stops once K nodes are settled: O(N K d log K)
        for mean degree d, never an N x N matrix (SciPy's ``dijkstra(limit=)`` needs a
        radius known in advance and returns dense (sources, N) rows).

        >>> tail, head = np.array([0, 1, 2]), np.array([1, 2, 3])  # a path 0-1-2-3
        >>> nb, dist = AttentionPolicy.graph_neighbours(tail, head, np.ones(3), 4, 3)
        >>> nb[1].tolist(), dist[1].tolist()
        ([1, 0, 2], [0.0, 1.0, 1.0])
        """
        tail, head = np.asarray(tail, dtype=np.int64), np.asarray(head, dtype=np.int64)
        weight = np.asarray(weight, dtype=np.float64)
        if not (tail.shape == head.shape == weight.shape and tail.ndim == 1):
            raise ValueError("tail, head and weight must be 1-D arrays of one length")
        if tail.size and (
            min(tail.min(), head.min()) < 0 or max(tail.max(), head.max()) >= num_nodes
        ):
            raise ValueError(f"edge endpoints must lie in [0, {num_nodes})")
        if not (np.all(np.isfinite(weight)) and np.all(weight >= 0)) or k < 1:
            raise ValueError("weights must be finite and >= 0, and k >= 1")
        # Undirected adjacency as CSR built by a stable sort over both directions.
        src = np.concatenate([tail, head])
        dst = np.concatenate([head, tail])
        w = np.concatenate([weight, weight])
        order = np.argsort(src, kind="stable")
        indptr = np.searchsorted(src[order], np.arange(num_nodes + 1)).tolist()
        adj_dst, adj_w = dst[order].tolist(), w[order].tolist()

        neighbours = np.repeat(np.arange(num_nodes, dtype=np.int64)[:, None], k, axis=1)
        distances = np.zeros((num_nodes, k), dtype=np.float32)
        for source in range(num_nodes):
            settled: dict[int, float] = {}
            frontier: list[tuple[float, int]] = [(0.0, source)]
            best = {source: 0.0}
            while frontier and len(settled) < k:
                d, node = heapq.heappop(frontier)
                if node in settled:
                    continue
                settled[node] = d
                for e in range(indptr[node], indptr[node + 1]):
                    other, nd = adj_dst[e], d + adj_w[e]
                    if other not in settled and nd < best.get(other, math.inf):
                        best[other] = nd
                        heapq.heappush(frontier, (nd, other))
            # Sorted explicitly: zero-weight edges can settle nodes out of (distance, id) order.
            row = sorted(settled.items(), key=lambda item: (item[1], item[0] != source, item[0]))
            neighbours[source, : len(row)] = [n for n, _ in row]
            distances[source, : len(row)] = [d for _, d in row]
        return neighbours, distances


def padding_mask(neighbours: torch.Tensor) -> torch.Tensor:
    """True (N, K) where slot k > 0 repeats the node itself, i.e. padding."""
    is_self = neighbours == torch.arange(neighbours.shape[0], device=neighbours.device).unsqueeze(
        1
    )  # (N, K)
    is_self[:, 0] = False
    return is_self


class AllocationDistribution(Dirichlet):
    """Dirichlet over the N + 1 action slots whose `log_prob` survives float32 underflow.

    Samples with small concentrations can hold exact zeros; `log_prob` clamps them to the
    smallest normal float so a stored action never gives an infinite log-probability.
    """

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        tiny = torch.finfo(value.dtype).tiny
        return super().log_prob(value.clamp_min(tiny))

    @property
    def mean_action(self) -> torch.Tensor:
        """The deterministic action for evaluation: the Dirichlet mean (B, N + 1)."""
        return self.mean


def action_distribution(
    logits: torch.Tensor, min_concentration: float = 1e-3
) -> AllocationDistribution:
    """Dirichlet over N + 1 slots, concentration ``softplus(logits) + min_concentration``."""
    concentration = nn.functional.softplus(logits) + min_concentration  # (B, N + 1)
    return AllocationDistribution(concentration, validate_args=False)


def mean_action(logits: torch.Tensor) -> torch.Tensor:
    """Deterministic evaluation action (B, N + 1): the mean of `action_distribution`."""
    return action_distribution(logits).mean_action


def count_flops_per_decision(
    policy: AttentionPolicy,
    num_nodes: int,
    neighbours: torch.Tensor | np.ndarray,
    distances: torch.Tensor | np.ndarray,
) -> int:
    """FLOPs of one forward pass on one observation of ``num_nodes`` nodes (B = 1)."""
    c = policy.config
    param = next(policy.parameters())
    nodes = torch.zeros(1, num_nodes, c.num_node_features, dtype=param.dtype, device=param.device)
    globals_ = torch.zeros(1, c.num_global_features, dtype=param.dtype, device=param.device)
    neighbours_t = torch.as_tensor(neighbours, dtype=torch.long, device=param.device)
    distances_t = torch.as_tensor(distances, dtype=param.dtype, device=param.device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        policy(nodes, globals_, neighbours_t, distances_t)
    return int(counter.get_total_flops())
