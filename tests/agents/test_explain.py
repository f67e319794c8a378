"""Explanations: integrated gradients with known answers, a one-feature policy, the CLI."""

from __future__ import annotations

import csv
import html
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
import typer
from page_checks import live_markup, network_references
from typer.testing import CliRunner

from agents.cli import green as green_cli
from agents.green.distill import fresh_student
from agents.green.explain import decision_step, explain_decision, integrated_gradients
from agents.policies.attention import AttentionConfig
from agents.policies.checkpoint import city_neighbours, save_checkpoint
from agents.policies.compressed import quantize_int8
from simcity.config.scenario import load_scenario
from simcity.env import GLOBAL_FEATURES, NODE_FEATURES, CityEnv
from simcity.errors import SimcityError

REPO = Path(__file__).parents[2]
SMALL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4, prior=None)
runner = CliRunner()
EVIL = "</script><img src=x onerror=alert(1)> & {tip}"


def test_integrated_gradients_of_a_linear_model_are_weight_times_input() -> None:
    w, v = torch.tensor([[1.0, -2.0], [0.5, 0.0]]), torch.tensor([3.0, -1.0, 2.0])
    x, y = torch.tensor([[2.0, 1.0], [4.0, 7.0]]), torch.tensor([1.0, 1.0, -1.0])
    x0, y0 = torch.ones(2, 2), torch.zeros(3)

    def f(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (S, 2, 2), (S, 3) -> (S,)
        return (a * w).sum(dim=(1, 2)) + (b * v).sum(dim=1)

    (ax, ay), delta = integrated_gradients(f, (x, y), (x0, y0), steps=4)
    torch.testing.assert_close(ax, w * (x - x0))
    torch.testing.assert_close(ay, v * (y - y0))
    assert abs(delta) < 1e-5


def one_feature_policy(feature: int) -> tuple[CityEnv, torch.nn.Module]:
    """A policy that sees only node feature ``feature``: every other input weight is 0."""
    model = fresh_student(SMALL, 0)
    with torch.no_grad():
        keep = model.node_embed.weight[:, feature].clone()
        model.node_embed.weight.zero_()
        model.node_embed.weight[:, feature] = 4.0 * keep
        model.global_embed.weight.zero_()
        model.node_head.weight.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(1))
    return CityEnv("tiny"), model.eval()


@pytest.mark.parametrize("feature", ["population", "risk_history"])
def test_the_only_feature_that_matters_ranks_first(feature: str) -> None:
    index = NODE_FEATURES.index(feature)
    env, model = one_feature_policy(index)
    obs, _ = env.reset(seed=0)
    neighbours, distances = city_neighbours(env.city, SMALL.num_neighbours)
    explained = explain_decision(model, obs, env, neighbours, distances, top=3)
    assert len(explained) == 3
    assert explained[0].units >= explained[1].units >= explained[2].units
    for node in explained:
        assert node.features[0].feature == feature and node.features[0].importance > 1e-4
        assert all(f.importance == 0.0 for f in node.features[1:])
        assert node.features[0].ablation != 0.0  # zeroing it moves the share...
        assert all(f.ablation == 0.0 for f in node.features[1:])  # ...and nothing else does
        assert abs(node.delta) < 1e-3 * max(node.share, 1e-3)
        assert len(node.features) == len(NODE_FEATURES) + len(GLOBAL_FEATURES)
        assert sum(link.weight for link in node.attention) == pytest.approx(1.0, abs=1e-5)
        assert node.attention[0].weight >= node.attention[-1].weight


def test_a_heuristic_prior_shows_in_the_ablation_not_in_the_gradients() -> None:
    """Network silenced, the allocation is the risk prior's: integrated gradients of the
    network find nothing, and zeroing a feature moves the share only where the risk
    heuristic reads that feature (risk history yes, the last allocation no)."""
    model = fresh_student(replace(SMALL, prior="risk"), 0)
    with torch.no_grad():
        for head in (model.node_head, model.unused_head):
            head.weight.zero_()
            head.bias.zero_()
    env = CityEnv("tiny")
    obs, _ = env.reset(seed=0)
    for _ in range(8):
        obs, *_ = env.step(env.action_space.sample())
    neighbours, distances = city_neighbours(env.city, SMALL.num_neighbours)
    (node,) = explain_decision(model.eval(), obs, env, neighbours, distances, top=1)
    by_name = {f.feature: f for f in node.features}
    assert all(f.importance == 0.0 for f in node.features)
    assert abs(node.delta) < 1e-6
    assert by_name["risk_history"].ablation > 0.0
    for unread in ("previous_allocation", "air_quality_up", "unwatched", "time_sin"):
        assert by_name[unread].ablation == 0.0


def test_decision_step_reads_local_clock_time() -> None:
    scenario = load_scenario("tiny")
    assert decision_step(scenario, "00:00") == 0
    assert decision_step(scenario, "06:20") == 25  # in force from 06:15
    late = scenario.model_copy(
        update={"time": scenario.time.model_copy(update={"start_hour": 22.0, "num_steps": 16})}
    )
    assert decision_step(late, "23:00") == 4
    assert decision_step(late, "01:45") == 15  # past midnight
    for bad in ("25:00", "6h", "12:60"):
        with pytest.raises(SimcityError, match="--at"):
            decision_step(scenario, bad)
    with pytest.raises(SimcityError, match="after the simulated"):
        decision_step(late, "02:00")


def test_int8_policies_cannot_be_explained() -> None:
    env, model = one_feature_policy(0)
    obs, _ = env.reset(seed=0)
    neighbours, distances = city_neighbours(env.city, SMALL.num_neighbours)
    with pytest.raises(SimcityError, match="int8"):
        explain_decision(quantize_int8(model), obs, env, neighbours, distances)


class Explained(NamedTuple):
    app: typer.Typer
    args: list[str]
    out: Path
    output: str


@pytest.fixture(scope="module")
def explained(tmp_path_factory: pytest.TempPathFactory) -> Explained:
    """`simcity explain` of a one-feature policy on a short tiny day with hostile names."""
    tmp_path = tmp_path_factory.mktemp("explain")
    _, model = one_feature_policy(NODE_FEATURES.index("risk_history"))
    checkpoint = save_checkpoint(
        tmp_path / "checkpoint.pt",
        model_config=SMALL,
        state_dict=model.state_dict(),
        optimizer_state={},
        step=0,
        update=0,
        rng_states={},
        extra={},
    )
    scenario = tmp_path / "short.toml"
    base = REPO / "scenarios" / "tiny.toml"
    lines = [f"base = {json.dumps(str(base))}", 'name = "short"', f"title = {json.dumps(EVIL)}"]
    lines += ["[time]", "num_steps = 8", "[node_names]"]
    lines += [f'"{i}" = {json.dumps(EVIL + str(i))}' for i in range(CityEnv("tiny").city.num_nodes)]
    scenario.write_text("\n".join(lines) + "\n")
    app = typer.Typer()
    green_cli.register(app)
    out = tmp_path / "why"
    args = ["explain", str(checkpoint), str(scenario), "--at", "01:10", "--top", "2"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return Explained(app, args, out, result.output)


def test_explain_cli_writes_map_ready_files(explained: Explained) -> None:
    app, args, out, output = explained
    assert "01:00 node" in output and "completeness gap" in output
    document = json.loads((out / "explain.json").read_text())
    assert document["step"] == 4 and document["time_local"] == "01:00"
    assert [n["features"][0]["feature"] for n in document["nodes"]] == ["risk_history"] * 2
    with (out / "attention.csv").open() as f:
        rows = list(csv.DictReader(f))
    means = [r for r in rows if r["layer"] == "mean"]
    assert {"node_lon", "node_lat", "neighbour_lon", "neighbour_lat", "weight"} <= set(rows[0])
    for node in {r["node"] for r in means}:
        total = sum(float(r["weight"]) for r in means if r["node"] == node)
        assert total == pytest.approx(1.0, abs=1e-5)
    per_head = [r for r in rows if r["layer"] != "mean"]
    assert len(per_head) == len(means) * SMALL.num_layers * SMALL.num_heads
    with (out / "features.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2 * (len(NODE_FEATURES) + len(GLOBAL_FEATURES))
    late = runner.invoke(app, [*args[:3], "--at", "03:00"])
    assert late.exit_code == 2 and "--at" in late.output


def test_explain_cli_writes_an_offline_map_of_the_attention(explained: Explained) -> None:
    page = (explained.out / "explain.html").read_text()
    assert network_references(page) == [] and "createDeck(" in page
    assert live_markup(page) == [] and "</script><img" not in page
    assert f"<title>{html.escape(EVIL)}: explained decision</title>" in page
    deck = json.loads(re.search(r"const jsonInput = (\{.*?\});\n", page)[1])  # type: ignore[index]
    layers = {layer["id"]: layer["data"] for layer in deck["layers"]}
    assert len(layers["nodes"]) == CityEnv("tiny").city.num_nodes
    assert all(EVIL in node["tip"] for node in layers["nodes"])  # text, escaped only as JSON
    with (explained.out / "attention.csv").open() as f:
        rows = list(csv.DictReader(f))
    last = str(SMALL.num_layers - 1)
    expected: dict[tuple[int, int], list[float]] = {}
    for row in rows:
        if row["layer"] == last:
            key = (int(row["node"]), int(row["neighbour"]))
            expected.setdefault(key, []).append(float(row["weight"]))
    assert len(next(iter(expected.values()))) == SMALL.num_heads
    drawn = {(line["node"], line["neighbour"]): line["weight"] for line in layers["attention"]}
    assert drawn.keys() == expected.keys() and len({node for node, _ in drawn}) == 2
    for key, heads in expected.items():
        assert drawn[key] == pytest.approx(sum(heads) / len(heads), abs=1e-6)
    widths = sorted((line["weight"], line["w"]) for line in layers["attention"])
    assert [w for _, w in widths] == sorted(w for _, w in widths)  # wider where weightier
    document = json.loads((explained.out / "explain.json").read_text())
    assert 0.0 < sum(document["shares"]) <= 1.0 + 1e-6  # the rest is left unused
    shares = [node["share"] for node in document["nodes"]]
    assert shares == pytest.approx(sorted(document["shares"], reverse=True)[:2])
