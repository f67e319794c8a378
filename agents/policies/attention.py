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
values are gathered explicitly, (B, N, K, H, Dh), and combined by elementwise products
and sums (batched K x Dh matmuls this small run several times slower on CPU);
`count_flops_per_decision` counts those products and sums beside the matmuls, so no
attention FLOP goes unbilled. Padding slots (a node
repeated as its own neighbour after slot 0, used when fewer than K nodes are reachable) are
masked out so an isolated node does not attend to itself K times.

Heads. One allocation logit per node and analytics tier (T = ``AttentionConfig.num_tiers``,
1 without ``[[compute.tiers]]``), node-major as the env reads them (slot ``i * T + t``:
node i, tier t), and one value per node; the mean of the node tokens (a size-agnostic
pool) gives the "unused" slot's logit and value. No weight depends on N; with T tiers the
node head is ``Linear(D -> T)``, so a checkpoint plays scenarios with its own tier list.
With ``AttentionConfig.size_agnostic_unused`` (the default) the unused logit is offset by
``log(N * T)``: its share of the softmax is then ``e^u / (mean e^node + e^u)``, so the same
network idles the same share of the budget on a city of any size (without the offset the
share scales like 1 / N; checkpoints saved before the field keep that behaviour).

Prior. With ``AttentionConfig.prior`` = ``"risk"``, ``"alarm"`` or ``"posterior"`` the node
logits are the network's output plus the log-weights of that heuristic
(`prior_log_weights`): residual policy learning (Silver et al. 2018; Johannink et al.
2019), so a fresh policy plays like the heuristic and PPO learns where to depart from it.
Off by default (``None``, the network alone): on ``downtown`` (20k steps, 24 held-out days)
PPO moved the posterior-residual policy from the posterior heuristic's $120.6k a day to
$122.0k (it concentrates the budget: logits 1.24 x the prior's log-weights), and at a
sixth of the learning rate with std e^-1 kept it level ($120.7k); the network alone gets
$121.1k. Earlier, the alarm-residual policy went from $122.6k to $124.7k.

Actions. `action_distribution` is a logistic normal over the N * T + 1 slots: log-weights
``z ~ Normal(logits, exp(log_std))``, independent per slot with one learned ``log_std``, and
the env gets ``exp(z - max z)`` (`to_weights`): non-negative weights, of which only the
ratios matter, exactly what `simcity.env.CityEnv` expects. The deterministic action is
``softmax(logits)`` (`mean_action`). Log-probabilities and values come per slot, so the
trainer can credit each node with its own cost (see `agents.training.train`).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.distributions import Normal
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from agents.policies.baselines import alarm_weights, posterior_weights, risk_weights
from simcity.env import GLOBAL_FEATURES, NODE_FEATURES

_PRIOR_WEIGHTS = {"risk": risk_weights, "alarm": alarm_weights, "posterior": posterior_weights}
PRIORS = (None, *_PRIOR_WEIGHTS)
MAX_TIERS = 16


@dataclass(frozen=True)
class AttentionConfig:
    """Sizes of an `AttentionPolicy`; none depends on the number of nodes."""

    num_node_features: int = len(NODE_FEATURES)
    num_global_features: int = len(GLOBAL_FEATURES)
    d_model: int = 32
    num_heads: int = 4
    num_layers: int = 2
    num_neighbours: int = 8
    mlp_ratio: int = 2
    """Hidden width of each block's MLP over ``d_model``."""
    dropout: float = 0.0
    init_log_std: float = -0.5
    """Initial log standard deviation of the log-weights (exploration)."""
    prior: str | None = None
    """Heuristic whose log-weights are added to the node logits (residual policy
    learning: the network learns corrections to it); None: the network alone."""
    num_tiers: int = 1
    """Analytics tiers the node head allocates (``[[compute.tiers]]``); 1: none."""
    size_agnostic_unused: bool = True
    """Offset the unused slot's logit by ``log(N * T)`` (see the module doc); False only
    in checkpoints saved before the field existed."""

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads != 0:
            raise ValueError(
                f"d_model {self.d_model} must be divisible by num_heads {self.num_heads}"
            )
        if not 1 <= self.num_tiers <= MAX_TIERS:
            raise ValueError(f"num_tiers {self.num_tiers}; expected 1 to {MAX_TIERS}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior {self.prior!r}; expected one of {sorted(PRIORS, key=str)}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads


class PolicyOutput(NamedTuple):
    """What one forward pass returns."""

    logits: torch.Tensor  # (B, N * T + 1), node-major, last = "unused" slot
    value: torch.Tensor  # (B, N + 1), each node's value; last from the pooled tokens
    attention: torch.Tensor  # (B, L, H, N, K), each row sums to 1 over K


class DistanceBias(nn.Module):
    """Additive attention bias per head from graph distance: MLP(log1p(distance))."""

    def __init__(self, num_heads: int, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.GELU(), nn.Linear(hidden, num_heads))

    def forward(self, distances: torch.Tensor) -> torch.Tensor:
        """Bias (N, K, H) for distances (N, K)."""
        return self.net(torch.log1p(distances.clamp_min(0.0)).unsqueeze(-1))  # (N, K, H)


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
        B, N, _ = x.shape
        K = neighbours.shape[1]
        H, Dh = self.num_heads, self.head_dim  # H * Dh is D, or less in a pruned copy
        q, k, v = self.qkv(x).view(B, N, 3, H, Dh).unbind(dim=2)  # each (B, N, H, Dh)
        # Gathered from contiguous copies: index_select on the strided qkv view is slower.
        k, v = k.contiguous(), v.contiguous()
        index = neighbours.reshape(-1)  # (N * K,)
        k_nb = k.index_select(1, index).view(B, N, K, H, Dh)  # (B, N, K, H, Dh)
        v_nb = v.index_select(1, index).view(B, N, K, H, Dh)  # (B, N, K, H, Dh)
        # Products and sums, not einsum: K x H tiny matmuls per node run far slower.
        scores = (q.unsqueeze(2) * k_nb).sum(dim=-1) / math.sqrt(Dh)  # (B, N, K, H)
        # Padding masked in the (N, K, H) bias, once, not in the (B, N, K, H) scores: the same.
        bias = self.bias(distances).masked_fill(mask.unsqueeze(-1), float("-inf"))  # (N, K, H)
        scores = scores + bias  # broadcast over B
        attention = torch.softmax(scores, dim=2)  # (B, N, K, H), sums to 1 over K
        mixed = (self.dropout(attention).unsqueeze(-1) * v_nb).sum(dim=2)  # (B, N, H, Dh)
        return self.proj(mixed.reshape(B, N, H * Dh)), attention.permute(0, 3, 1, 2)  # (B, H, N, K)


class Block(nn.Module):
    """Pre-norm transformer block with neighbourhood attention."""

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(config.d_model)
        self.attention = NeighbourhoodAttention(config)
        self.norm_mlp = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.mlp_ratio * config.d_model),
            nn.GELU(),
            nn.Linear(config.mlp_ratio * config.d_model, config.d_model),
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


def _global_embedding(num_features: int, width: int) -> nn.Linear:  # new globals: weight 0
    first = nn.Linear(drawn := min(num_features, GLOBAL_FEATURES.index("price_per_kwh")), width)
    layer = nn.Linear(num_features, width, device="meta").to_empty(device="cpu")
    layer.weight.data.zero_()[:, :drawn] = first.weight.data
    layer.bias.data.copy_(first.bias.data)
    return layer


class AttentionPolicy(nn.Module):
    """Actor-critic over node tokens with graph-local attention; runs on any N."""

    def __init__(self, config: AttentionConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else AttentionConfig()
        c = self.config
        self.node_embed = nn.Linear(c.num_node_features, c.d_model)
        self.global_embed = _global_embedding(c.num_global_features, c.d_model)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.node_head = nn.Linear(c.d_model, c.num_tiers)
        self.unused_head = nn.Linear(c.d_model, 1)
        self.value_head = nn.Sequential(
            nn.Linear(c.d_model, c.d_model), nn.GELU(), nn.Linear(c.d_model, 1)
        )
        self.log_std = nn.Parameter(torch.tensor(float(c.init_log_std)))
        # Start near the uniform allocation: small logits.
        for head in (self.node_head, self.unused_head):
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)

    def forward(
        self,
        nodes: torch.Tensor,
        globals_: torch.Tensor,
        neighbours: torch.Tensor,
        distances: torch.Tensor,
    ) -> PolicyOutput:
        """Logits (B, N * T + 1), values (B, N + 1) and attention (B, L, H, N, K).

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
        node_logits = self.node_head(x)  # (B, N, T)
        if c.prior is not None:
            node_logits = node_logits + prior_log_weights(nodes, c.prior).unsqueeze(-1)
        unused_logit = self.unused_head(pooled)  # (B, 1)
        if c.size_agnostic_unused:  # the unused share no longer scales like 1 / (N * T)
            unused_logit = unused_logit + math.log(node_logits.shape[1] * c.num_tiers)
        logits = torch.cat([node_logits.flatten(1), unused_logit], dim=1)  # (B, N * T + 1)
        tokens = torch.cat([x, pooled.unsqueeze(1)], dim=1)  # (B, N + 1, D)
        value = self.value_head(tokens).squeeze(-1)  # (B, N + 1)
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


PRIOR_FLOOR = 0.05
"""Share of the mean weight every node keeps under a prior, so the network can move it."""


def prior_log_weights(nodes: torch.Tensor, prior: str) -> torch.Tensor:
    """Log-weights (B, N) of heuristic ``prior`` for node features (B, N, F), no gradient.

    ``log(w / mean(w) + PRIOR_FLOOR)`` from `agents.policies.baselines.risk_weights` or
    `agents.policies.baselines.alarm_weights` under the default incident gains (the network
    knows no scenario), computed in NumPy (about 30 operations per node, not counted by
    `count_flops_per_decision`: under 0.1% of the network's FLOPs).
    """
    if prior not in _PRIOR_WEIGHTS:
        raise ValueError(f"unknown prior {prior!r}")
    weights = _PRIOR_WEIGHTS[prior](nodes.detach().float().cpu().numpy())  # (B, N)
    mean = np.maximum(weights.mean(axis=-1, keepdims=True), 1e-12)
    log_weights = np.log(weights / mean + PRIOR_FLOOR)
    return torch.as_tensor(log_weights, dtype=nodes.dtype, device=nodes.device)


def action_distribution(logits: torch.Tensor, log_std: torch.Tensor) -> Normal:
    """Per-slot normal over log-weights (B, N * T + 1): mean ``logits``, std ``exp(log_std)``.

    ``log_prob`` and ``entropy`` of the result are per slot (B, N * T + 1); sum over the last
    dim for the joint action. Give the env ``to_weights(sample)``.
    """
    scale = log_std.exp().expand_as(logits)  # (B, N * T + 1)
    return Normal(logits, scale, validate_args=False)


def to_weights(log_weights: torch.Tensor) -> torch.Tensor:
    """Env action weights from log-weights (..., N * T + 1): ``exp(z - max z)``, max 1."""
    return (log_weights - log_weights.amax(dim=-1, keepdim=True)).exp()


def mean_action(logits: torch.Tensor) -> torch.Tensor:
    """Deterministic evaluation action (B, N * T + 1): ``softmax(logits)``, the allocation at
    the distribution's mean log-weights."""
    return torch.softmax(logits, dim=-1)


def _mul_flop(
    a_shape: torch.Size, b_shape: torch.Size, *args: object, out_shape: torch.Size
) -> int:
    """One FLOP per product (the attention's scores and value mixing)."""
    return math.prod(out_shape)


def _sum_flop(in_shape: torch.Size, *args: object, out_shape: torch.Size, **kwargs: object) -> int:
    """One FLOP per addition: inputs less outputs."""
    return math.prod(in_shape) - math.prod(out_shape)


_ELEMENTWISE_FLOPS = {
    torch.ops.aten.mul: _mul_flop,
    torch.ops.aten.sum: _sum_flop,
}


def count_flops_per_decision(
    policy: AttentionPolicy,
    num_nodes: int,
    neighbours: torch.Tensor | np.ndarray,
    distances: torch.Tensor | np.ndarray,
) -> int:
    """FLOPs of one forward pass on one observation of ``num_nodes`` nodes (B = 1).

    Counted by `FlopCounterMode` on the real network, with the math attention backend:
    its matmuls (2 per multiply-add) and, through a custom mapping, the elementwise
    products and sums that compute the neighbourhood attention (1 each).
    """
    c = policy.config
    param = next(policy.parameters())
    nodes = torch.zeros(1, num_nodes, c.num_node_features, dtype=param.dtype, device=param.device)
    globals_ = torch.zeros(1, c.num_global_features, dtype=param.dtype, device=param.device)
    neighbours_t = torch.as_tensor(neighbours, dtype=torch.long, device=param.device)
    distances_t = torch.as_tensor(distances, dtype=param.dtype, device=param.device)
    counter = FlopCounterMode(display=False, custom_mapping=_ELEMENTWISE_FLOPS)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        policy(nodes, globals_, neighbours_t, distances_t)
    return int(counter.get_total_flops())
