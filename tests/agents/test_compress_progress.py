"""`simcity compress` says how far it has got and runs on one torch thread (issue 22)."""

from __future__ import annotations

from pathlib import Path

import torch

from agents.green.compress import CompressOptions, compress_checkpoint
from agents.green.distill import DistillConfig, fresh_student
from agents.policies.attention import AttentionConfig, count_flops_per_decision
from agents.policies.checkpoint import city_neighbours, save_checkpoint
from agents.policies.compressed import policy_cost, quantize_int8
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv

SMALL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)


def short_tiny(num_steps: int = 8) -> CityEnv:
    scenario = load_scenario("tiny")
    time = scenario.time.model_copy(update={"num_steps": num_steps})
    return CityEnv(scenario.model_copy(update={"time": time}))


def test_compress_reports_every_stage_on_one_thread(tmp_path: Path) -> None:
    model = fresh_student(SMALL, 0)
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
    options = CompressOptions(
        method="prune", episodes=2, latency_runs=3, distill=DistillConfig(episodes=2, epochs=3)
    )
    calls: list[tuple[str, int, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        calls.append((stage, done, total, torch.get_num_threads()))

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        report = compress_checkpoint(checkpoint, short_tiny(), options, tmp_path / "out", progress)
        assert torch.get_num_threads() == 2  # left as it was
    finally:
        torch.set_num_threads(before)
    assert [c[:3] for c in calls] == [
        ("teacher days", 1, 2),
        ("teacher days", 2, 2),
        ("fit epochs", 1, 3),
        ("fit epochs", 2, 3),
        ("fit epochs", 3, 3),
        ("evaluate original", 1, 2),
        ("evaluate original", 2, 2),
        ("evaluate prune", 1, 2),
        ("evaluate prune", 2, 2),
    ]
    assert {c[3] for c in calls} == {1}
    assert len(report["done"]["finetune"]) > 0 and report["compressed"]["kpis"]
    # The same compression without a progress callback is the same, bit for bit.
    again = compress_checkpoint(checkpoint, short_tiny(), options, tmp_path / "again")
    assert again["done"] == report["done"]
    assert again["compressed"]["kpis"] == report["compressed"]["kpis"]


def test_a_given_flop_count_is_the_counted_one() -> None:
    env = short_tiny()
    neighbours, distances = city_neighbours(env.city, SMALL.num_neighbours)
    n = env.city.num_nodes
    for model in (fresh_student(SMALL, 1), quantize_int8(fresh_student(SMALL, 1))):
        counted = policy_cost(model, n, neighbours, distances)
        flop = count_flops_per_decision(model, n, neighbours, distances)
        assert policy_cost(model, n, neighbours, distances, flop) == counted
    assert counted.int8_op > 0  # the int8 model's ops were counted in its own pass
