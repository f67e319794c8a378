"""Why a policy allocated what it did at one decision: attention and feature attributions.

Shapes: N nodes, F node features, G global features, L layers, H heads, K neighbours,
S integration points.

Attention. For each of the ``top`` nodes given the most units, the weights with which it
attended to each of its K neighbours (`agents.policies.attention.PolicyOutput.attention`), per layer
and head and averaged over both; padding slots are dropped.

Features, two ways.

- Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic attribution for deep
  networks", ICML 2017) of the node's allocation share, ``softmax(logits)[i]``, with
  respect to every input: ``(x - x0) * mean over the path x0 -> x of the gradient``, the
  path integral taken by S-point Gauss-Legendre quadrature (Captum's default rule; Captum
  itself is not used: for one scalar of a two-input model this is the whole algorithm, and
  it would add matplotlib and more to the dependencies). The baseline ``x0`` is all zeros
  (no people, no sensors up, no detections, globals 0). A policy with a heuristic prior
  (`AttentionConfig.prior`) adds log-weights computed in NumPy, with no gradient and with
  jumps (at all-zero estimates); integrated gradients attribute the network's part, with
  the prior's log-weights held at their values for this observation. Attributions then
  sum to ``f(x) - f(x0)`` of that function up to the quadrature error, reported as
  ``delta`` (completeness). A node feature's importance is the sum over nodes of its
  absolute attributions; ``own`` is the part at the node itself.
- Ablation (occlusion) of the whole policy, prior included: ``ablation`` is the node's
  share now minus its share with that feature set to 0 at every node (for a global, the
  global set to 0). One batched forward pass covers every feature.

Features are listed by integrated-gradient importance.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from agents.policies.attention import AttentionPolicy, prior_log_weights
from agents.policies.checkpoint import TrainedPolicy
from agents.policies.compressed import is_int8
from agents.policies.tiers import require_one_tier
from simcity.config.scenario import Scenario
from simcity.env import GLOBAL_FEATURES, NODE_FEATURES, CityEnv
from simcity.errors import SimcityError
from simcity.records.files import write_atomic
from simcity.records.results import clock


@dataclass(frozen=True)
class AttentionLink:
    """How much a node attended to one neighbour."""

    neighbour: int
    lon: float
    lat: float
    distance_min: float  # free-flow travel time
    weight: float  # mean over layers and heads
    by_layer_head: list[list[float]]  # (L, H)


@dataclass(frozen=True)
class FeatureAttribution:
    feature: str
    kind: str  # "node" or "global"
    attribution: float  # signed, summed over nodes
    importance: float  # absolute, summed over nodes
    own: float  # signed, at the explained node itself (0 for globals)
    ablation: float  # share now - share with the feature zeroed everywhere (whole policy)


@dataclass(frozen=True)
class NodeExplanation:
    node: int
    lon: float
    lat: float
    units: float
    share: float  # of the budget, softmax(logits)[node]
    attention: list[AttentionLink]  # by weight, largest first
    features: list[FeatureAttribution]  # by importance, largest first
    delta: float  # sum of attributions - (f(x) - f(x0))


@dataclass(frozen=True)
class Explanation:
    scenario: str
    seed: int
    step: int
    time_local: str
    nodes: list[NodeExplanation]
    shares: list[float]  # (N,) every node's share of the budget at this decision


def integrated_gradients(
    fn: Callable[..., torch.Tensor],
    inputs: tuple[torch.Tensor, ...],
    baselines: tuple[torch.Tensor, ...],
    steps: int = 32,
) -> tuple[tuple[torch.Tensor, ...], float]:
    """Attributions shaped like ``inputs`` and the completeness gap.

    ``fn`` takes a batch of S interpolated inputs, each (S, *shape), and returns (S,).

    >>> w = torch.tensor([1.0, -2.0, 3.0])
    >>> (attr,), delta = integrated_gradients(lambda x: (x**2 * w).sum(-1), (torch.ones(3),),
    ...                                       (torch.zeros(3),))
    >>> [round(float(a), 6) for a in attr], abs(delta) < 1e-6
    ([1.0, -2.0, 3.0], True)
    """
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas = torch.as_tensor((nodes + 1.0) / 2.0, dtype=inputs[0].dtype)  # (S,) in (0, 1)
    weights_t = torch.as_tensor(weights / 2.0, dtype=inputs[0].dtype)  # (S,), sum 1
    paths = []
    for x, x0 in zip(inputs, baselines, strict=True):
        shape = (steps,) + (1,) * x.ndim
        path = x0.unsqueeze(0) + alphas.view(shape) * (x - x0).unsqueeze(0)  # (S, *shape)
        paths.append(path.detach().requires_grad_(True))
    grads = torch.autograd.grad(fn(*paths).sum(), paths)
    attributions = tuple(
        (x - x0) * torch.tensordot(weights_t, g, dims=1)
        for x, x0, g in zip(inputs, baselines, grads, strict=True)
    )
    with torch.no_grad():
        ends = fn(*(torch.stack([x0, x]) for x, x0 in zip(inputs, baselines, strict=True)))
    total = sum(float(a.sum()) for a in attributions)
    return tuple(a.detach() for a in attributions), total - float(ends[1] - ends[0])


def explain_decision(
    model: AttentionPolicy,
    obs: dict[str, np.ndarray],
    env: CityEnv,
    neighbours: torch.Tensor,
    distances: torch.Tensor,
    top: int = 5,
    steps: int = 32,
) -> list[NodeExplanation]:
    """Attention and feature attributions behind the ``top`` nodes of one decision."""
    if is_int8(model):
        raise SimcityError(
            "is int8: its matmuls have no gradients", field="CHECKPOINT", expected="a float policy"
        )
    city = env.city
    x = torch.as_tensor(obs["nodes"], dtype=torch.float32)  # (N, F)
    g = torch.as_tensor(obs["globals"], dtype=torch.float32)  # (G,)
    share, attention = _decide(model, x, g, neighbours, distances)  # (N,), (L, H, N, K)
    chosen = torch.argsort(share, descending=True, stable=True)[: min(top, city.num_nodes)]
    ablated = _ablation_shares(model, x, g, neighbours, distances)  # (F + G, N)
    prior = getattr(model.config, "prior", None)
    prior_now = None if prior is None else prior_log_weights(x.unsqueeze(0), prior)  # (1, N)
    lon, lat = city.lon, city.lat
    explained = []
    for i in chosen.tolist():

        def allocation_share(
            nodes: torch.Tensor, globals_: torch.Tensor, node: int = i
        ) -> torch.Tensor:
            logits = model(nodes, globals_, neighbours, distances).logits  # (S, N + 1)
            if prior is not None and prior_now is not None:  # hold the prior at x
                shift = prior_now - prior_log_weights(nodes, prior)  # (S, N), no gradient
                logits = logits + torch.nn.functional.pad(shift, (0, 1))  # (S, N + 1)
            return torch.softmax(logits, dim=-1)[:, node]  # (S,)

        (node_attr, global_attr), delta = integrated_gradients(
            allocation_share, (x, g), (torch.zeros_like(x), torch.zeros_like(g)), steps
        )  # (N, F), (G,)
        effect = (share[i] - ablated[:, i]).tolist()  # (F + G,)
        num_f = len(NODE_FEATURES)
        features = [
            FeatureAttribution(
                name,
                "node",
                float(node_attr[:, f].sum()),
                float(node_attr[:, f].abs().sum()),
                float(node_attr[i, f]),
                effect[f],
            )
            for f, name in enumerate(NODE_FEATURES)
        ] + [
            FeatureAttribution(name, "global", float(a), abs(float(a)), 0.0, effect[num_f + k])
            for k, (name, a) in enumerate(zip(GLOBAL_FEATURES, global_attr.tolist(), strict=True))
        ]
        features.sort(key=lambda item: item.importance, reverse=True)
        links = []
        for k, j in enumerate(neighbours[i].tolist()):
            if k > 0 and j == i:  # padding: the node repeated as its own neighbour
                continue
            per = attention[:, :, i, k]  # (L, H)
            links.append(
                AttentionLink(
                    j,
                    float(lon[j]),
                    float(lat[j]),
                    float(distances[i, k]),
                    float(per.mean()),
                    per.tolist(),
                )
            )
        links.sort(key=lambda link: link.weight, reverse=True)
        explained.append(
            NodeExplanation(
                i,
                float(lon[i]),
                float(lat[i]),
                float(share[i]) * env.budget_units,
                float(share[i]),
                links,
                features,
                delta,
            )
        )
    return explained


def _decide(
    model: AttentionPolicy,
    x: torch.Tensor,
    g: torch.Tensor,
    neighbours: torch.Tensor,
    distances: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every node's share of the budget (N,) and the attention (L, H, N, K) of one decision."""
    with torch.no_grad():
        out = model(x.unsqueeze(0), g.unsqueeze(0), neighbours, distances)
    return torch.softmax(out.logits[0], dim=-1)[:-1], out.attention[0]


def _ablation_shares(
    model: AttentionPolicy,
    x: torch.Tensor,
    g: torch.Tensor,
    neighbours: torch.Tensor,
    distances: torch.Tensor,
) -> torch.Tensor:
    """Node shares (F + G, N) with one feature zeroed everywhere per row, node features
    first, in one batched forward pass."""
    num_f, num_g = x.shape[1], g.shape[0]
    nodes = x.unsqueeze(0).repeat(num_f + num_g, 1, 1)  # (F + G, N, F)
    globals_ = g.unsqueeze(0).repeat(num_f + num_g, 1)  # (F + G, G)
    rows = torch.arange(num_f)
    nodes[rows, :, rows] = 0.0
    globals_[num_f + torch.arange(num_g), torch.arange(num_g)] = 0.0
    with torch.no_grad():
        logits = model(nodes, globals_, neighbours, distances).logits  # (F + G, N + 1)
    return torch.softmax(logits, dim=-1)[:, :-1]


def decision_step(scenario: Scenario, at: str) -> int:
    """The decision step at local clock time ``at`` ("HH:MM"), the day's step in force then."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", at.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise SimcityError(f"is {at!r}", field="--at", expected="a local time HH:MM")
    t = scenario.time
    minutes = (int(match[1]) * 60 + int(match[2]) - t.start_hour * 60) % 1440
    step = int(minutes // t.dt_min)
    if step >= t.num_steps:
        raise SimcityError(
            f"{at} is after the simulated {t.num_steps} x {t.dt_min:g} min",
            field="--at",
            expected=f"a time within {t.num_steps * t.dt_min:g} min of the start",
        )
    return step


def explain_at(
    policy: TrainedPolicy, env: CityEnv, at: str, seed: int, top: int = 5, steps: int = 32
) -> Explanation:
    """Play ``policy`` from ``reset(seed)`` to the decision at ``at`` and explain it."""
    require_one_tier(env.scenario, "explain")
    step = decision_step(env.scenario, at)
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    for _ in range(step):
        obs, *_ = env.step(policy.act(obs))
    assert env.world is not None
    hour = env.world.hour_local(env.world.env.now)
    nodes = explain_decision(
        policy.model, obs, env, policy.neighbours, policy.distances, top, steps
    )
    x = torch.as_tensor(obs["nodes"], dtype=torch.float32)  # (N, F)
    g = torch.as_tensor(obs["globals"], dtype=torch.float32)  # (G,)
    share, _ = _decide(policy.model, x, g, policy.neighbours, policy.distances)
    return Explanation(env.scenario.name, seed, step, clock(hour), nodes, share.tolist())


def attention_rows(explanation: Explanation) -> list[dict[str, float | int | str]]:
    """One row per (node, neighbour, layer, head), plus layer/head "mean": map-ready."""
    rows: list[dict[str, float | int | str]] = []
    for node in explanation.nodes:
        for link in node.attention:
            base = {
                "node": node.node,
                "node_lon": node.lon,
                "node_lat": node.lat,
                "neighbour": link.neighbour,
                "neighbour_lon": link.lon,
                "neighbour_lat": link.lat,
                "distance_min": link.distance_min,
            }
            rows.append({**base, "layer": "mean", "head": "mean", "weight": link.weight})
            for layer, heads in enumerate(link.by_layer_head):
                for head, weight in enumerate(heads):
                    rows.append({**base, "layer": layer, "head": head, "weight": weight})
    return rows


def feature_rows(explanation: Explanation) -> list[dict[str, float | int | str]]:
    """One row per (node, feature)."""
    return [
        {"node": node.node, "lon": node.lon, "lat": node.lat, "units": node.units, **asdict(f)}
        for node in explanation.nodes
        for f in node.features
    ]


def write_explanation(out_dir: Path, explanation: Explanation) -> list[Path]:
    """``explain.json``, ``attention.csv`` and ``features.csv`` in ``out_dir``, atomically."""
    paths = [out_dir / "explain.json", out_dir / "attention.csv", out_dir / "features.csv"]
    write_atomic(paths[0], json.dumps(asdict(explanation), indent=2) + "\n")
    for path, rows in zip(
        paths[1:], (attention_rows(explanation), feature_rows(explanation)), strict=True
    ):
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(path, buffer.getvalue())
    return paths
