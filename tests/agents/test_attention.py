"""Graph-local attention policy: shapes, equivariance, attention, FLOPs, actions, checkpoints."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.policies.attention import (  # noqa: E402 (after the importorskip above)
    AttentionConfig,
    AttentionPolicy,
    action_distribution,
    count_flops_per_decision,
    mean_action,
    to_weights,
)

torch.set_num_threads(1)
CONFIG = AttentionConfig(num_neighbours=8)


def grid_edges(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tail, head and unit weight of a rows x cols 4-neighbour grid, node = r * cols + c."""
    ids = np.arange(rows * cols).reshape(rows, cols)
    tail = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    head = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    return tail, head, np.ones(tail.size)


def grid_inputs(
    rows: int, cols: int, k: int, batch: int = 2, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    tail, head, weight = grid_edges(rows, cols)
    n = rows * cols
    neighbours, distances = AttentionPolicy.graph_neighbours(tail, head, weight, n, k)
    generator = torch.Generator().manual_seed(seed)
    nodes = torch.rand(batch, n, CONFIG.num_node_features, generator=generator)
    globals_ = torch.rand(batch, CONFIG.num_global_features, generator=generator)
    return nodes, globals_, torch.from_numpy(neighbours), torch.from_numpy(distances)


@pytest.fixture(scope="module")
def policy() -> AttentionPolicy:
    torch.manual_seed(0)
    return AttentionPolicy(CONFIG).eval()


def test_graph_neighbours_on_grid_gives_self_then_hop_one() -> None:
    tail, head, weight = grid_edges(4, 4)
    neighbours, distances = AttentionPolicy.graph_neighbours(tail, head, weight, 16, 5)
    assert neighbours.shape == distances.shape == (16, 5)
    assert np.array_equal(neighbours[:, 0], np.arange(16))
    assert np.all(distances[:, 0] == 0)
    # Inner node 5 = (1, 1): its four hop-1 neighbours, by id.
    assert neighbours[5].tolist() == [5, 1, 4, 6, 9]
    assert distances[5].tolist() == [0, 1, 1, 1, 1]
    # Corner node 0: two hop-1 neighbours, then the nearest hop-2 nodes by id.
    assert neighbours[0].tolist() == [0, 1, 4, 2, 5]
    assert distances[0].tolist() == [0, 1, 1, 2, 2]


def test_graph_neighbours_pads_with_self_and_uses_weights() -> None:
    # 0 -(5)- 1 -(1)- 2 and an isolated node 3.
    tail, head, weight = np.array([0, 1]), np.array([1, 2]), np.array([5.0, 1.0])
    neighbours, distances = AttentionPolicy.graph_neighbours(tail, head, weight, 4, 3)
    assert neighbours[0].tolist() == [0, 1, 2]
    assert distances[0].tolist() == [0, 5, 6]
    assert neighbours[3].tolist() == [3, 3, 3]
    assert distances[3].tolist() == [0, 0, 0]


def test_same_weights_run_on_any_size(policy: AttentionPolicy) -> None:
    for rows, cols in [(4, 4), (15, 15)]:
        n, k = rows * cols, CONFIG.num_neighbours
        out = policy(*grid_inputs(rows, cols, k))
        assert out.logits.shape == (2, n + 1)
        assert out.value.shape == (2, n + 1)
        assert out.attention.shape == (2, CONFIG.num_layers, CONFIG.num_heads, n, k)
        assert torch.isfinite(out.logits).all() and torch.isfinite(out.value).all()


def test_attention_rows_sum_to_one_and_skip_padding(policy: AttentionPolicy) -> None:
    nodes, globals_, neighbours, distances = grid_inputs(4, 4, CONFIG.num_neighbours)
    attention = policy(nodes, globals_, neighbours, distances).attention
    torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]))
    # Two isolated nodes: every slot after the first is padding, so all weight is on self.
    lonely = torch.zeros(2, CONFIG.num_neighbours, dtype=torch.long) + torch.arange(2)[:, None]
    out = policy(nodes[:, :2], globals_, lonely, torch.zeros(lonely.shape))
    assert torch.all(out.attention[..., 0] == 1)


def test_node_logits_are_permutation_equivariant(policy: AttentionPolicy) -> None:
    nodes, globals_, neighbours, distances = grid_inputs(4, 4, CONFIG.num_neighbours)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    inverse = torch.argsort(perm)  # inverse[old id] = new id
    out = policy(nodes, globals_, neighbours, distances)
    out_perm = policy(nodes[:, perm], globals_, inverse[neighbours[perm]], distances[perm])
    torch.testing.assert_close(out_perm.logits[:, :16], out.logits[:, perm])
    torch.testing.assert_close(out_perm.logits[:, 16], out.logits[:, 16])
    torch.testing.assert_close(out_perm.value[:, :16], out.value[:, perm])
    torch.testing.assert_close(out_perm.value[:, 16], out.value[:, 16])
    assert not torch.allclose(out.logits[:, :16], out.logits[:, perm])  # the check can fail


def test_flops_grow_linearly_in_nodes(policy: AttentionPolicy) -> None:
    flops = []
    for rows, cols in [(15, 15), (15, 30)]:
        _, _, neighbours, distances = grid_inputs(rows, cols, CONFIG.num_neighbours, batch=1)
        flops.append(count_flops_per_decision(policy, rows * cols, neighbours, distances))
    assert flops[0] > 0
    assert 1.8 <= flops[1] / flops[0] <= 2.2


def test_flops_count_every_layer_and_the_attention(policy: AttentionPolicy) -> None:
    """The counter's total equals a hand count of the network, attention included."""
    rows, cols, k = 4, 4, CONFIG.num_neighbours
    n = rows * cols
    _, _, neighbours, distances = grid_inputs(rows, cols, k, batch=1)
    c = CONFIG
    d, h, f, g = c.d_model, c.num_heads, c.num_node_features, c.num_global_features
    hidden = 16  # DistanceBias
    per_layer = (
        n * 2 * d * 3 * d  # qkv
        + n * k * (2 * hidden + 2 * hidden * h)  # distance bias MLP on (N, K)
        + n * k * d
        + n * k * h * (c.head_dim - 1)  # scores: products and sums over Dh
        + n * k * d
        + n * (k - 1) * d  # value mixing: products and sums over K
        + n * 2 * d * d  # output projection
        + n * 2 * 2 * d * c.mlp_ratio * d  # MLP
    )
    expected = (
        n * 2 * f * d  # node embedding
        + 2 * g * d  # global embedding
        + c.num_layers * per_layer
        + n * 2 * d  # node logits
        + 2 * d  # unused logit
        + (n + 1) * (2 * d * d + 2 * d)  # value head on every slot
    )
    assert count_flops_per_decision(policy, n, neighbours, distances) == expected


def test_logistic_normal_action(policy: AttentionPolicy) -> None:
    logits = policy(*grid_inputs(15, 15, CONFIG.num_neighbours)).logits
    distribution = action_distribution(logits, policy.log_std)
    log_weights = distribution.sample()
    assert log_weights.shape == logits.shape
    weights = to_weights(log_weights)
    assert torch.all(weights >= 0) and torch.all(weights.amax(-1) == 1)
    log_prob = distribution.log_prob(log_weights)
    assert log_prob.shape == logits.shape and torch.isfinite(log_prob).all()
    assert torch.isfinite(distribution.entropy()).all()
    # The same std on every slot, from the model's one learned parameter.
    torch.testing.assert_close(distribution.stddev, policy.log_std.exp().expand_as(logits))
    deterministic = mean_action(logits)
    torch.testing.assert_close(deterministic.sum(-1), torch.ones(2))
    torch.testing.assert_close(deterministic, to_weights(logits) / to_weights(logits).sum(-1, True))


def test_gradients_reach_every_parameter(policy: AttentionPolicy) -> None:
    trained = AttentionPolicy(CONFIG)
    trained.load_state_dict(policy.state_dict())
    out = trained(*grid_inputs(4, 4, CONFIG.num_neighbours))
    distribution = action_distribution(out.logits, trained.log_std)
    loss = -distribution.log_prob(distribution.sample()).mean() + out.value.square().mean()
    loss.backward()
    for name, param in trained.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_checkpoint_round_trip(policy: AttentionPolicy, tmp_path: Path) -> None:
    path = tmp_path / "policy.pt"
    torch.save(policy.state_dict(), path)
    restored = AttentionPolicy(CONFIG).eval()
    restored.load_state_dict(torch.load(path, weights_only=True))
    inputs = grid_inputs(4, 4, CONFIG.num_neighbours)
    expected, got = policy(*inputs), restored(*inputs)
    torch.testing.assert_close(got.logits, expected.logits)
    torch.testing.assert_close(got.value, expected.value)


def test_rejects_mismatched_shapes(policy: AttentionPolicy) -> None:
    nodes, globals_, neighbours, distances = grid_inputs(4, 4, CONFIG.num_neighbours)
    with pytest.raises(ValueError, match="neighbours"):
        policy(nodes, globals_, neighbours[:8], distances[:8])
    with pytest.raises(ValueError, match="nodes"):
        policy(nodes[..., :5], globals_, neighbours, distances)


@pytest.mark.parametrize("prior", ["risk", "alarm", "posterior"])
def test_a_fresh_residual_policy_plays_its_heuristic(prior: str) -> None:
    """With a prior and the near-zero initial heads, the node allocation is the
    heuristic's weights (plus the floor): residual learning starts from the heuristic."""
    from agents.policies.attention import PRIOR_FLOOR
    from agents.policies.baselines import alarm_weights, posterior_weights, risk_weights

    torch.manual_seed(0)
    model = AttentionPolicy(AttentionConfig(num_neighbours=8, prior=prior)).eval()
    nodes, globals_, neighbours, distances = grid_inputs(5, 5, 8)
    nodes[..., -1] = nodes[..., -1] * 3.0  # a wide spread of anomaly evidence
    with torch.no_grad():
        share = mean_action(model(nodes, globals_, neighbours, distances).logits)[:, :-1]
    weights = {"risk": risk_weights, "alarm": alarm_weights, "posterior": posterior_weights}
    heuristic = weights[prior](nodes.double().numpy())
    expected = heuristic / heuristic.mean(-1, keepdims=True) + PRIOR_FLOOR  # (B, N)
    expected = expected / expected.sum(-1, keepdims=True)
    got = share / share.sum(-1, keepdim=True)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0.05)
    assert np.corrcoef(got.numpy().ravel(), expected.ravel())[0, 1] > 0.99
    if prior != "risk":  # the evidence (and unwatched) move it: not the risk prior
        risk = risk_weights(nodes.double().numpy())
        risk = risk / risk.mean(-1, keepdims=True) + PRIOR_FLOOR
        assert not np.allclose(expected, risk / risk.sum(-1, keepdims=True), rtol=0.05)


@pytest.mark.parametrize("size_agnostic", [True, False])
def test_unused_share_does_not_shrink_with_the_city(size_agnostic: bool) -> None:
    """Equal logits everywhere: with the log(N * T) offset the unused slot takes half the
    budget on any city; without it (checkpoints from before the field) 1 / (N + 1)."""
    torch.manual_seed(0)
    config = dataclasses.replace(CONFIG, size_agnostic_unused=size_agnostic)
    model = AttentionPolicy(config).eval()
    with torch.no_grad():
        for head in (model.node_head, model.unused_head):
            head.weight.zero_()
            head.bias.zero_()
    for rows in (2, 6):
        logits = model(*grid_inputs(rows, rows, config.num_neighbours)).logits  # (B, N + 1)
        share = torch.softmax(logits, dim=1)[:, -1]
        expected = 0.5 if size_agnostic else 1 / (rows * rows + 1)
        torch.testing.assert_close(share, torch.full_like(share, expected))


def test_checkpoints_from_before_the_offset_keep_their_behaviour(tmp_path: Path) -> None:
    from agents.policies.checks import check_model_config

    stored = dataclasses.asdict(CONFIG)
    del stored["size_agnostic_unused"]
    assert not check_model_config(stored, file=tmp_path / "old.pt").size_agnostic_unused
    stored["size_agnostic_unused"] = True
    assert check_model_config(stored, file=tmp_path / "new.pt").size_agnostic_unused
