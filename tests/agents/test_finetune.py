"""Transfer: fine-tuning starts from the checkpoint, freezing keeps the encoder; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from agents.cli.main import app  # noqa: E402
from agents.policies.attention import AttentionConfig  # noqa: E402
from agents.policies.checkpoint import load_checkpoint  # noqa: E402
from agents.training.train import TrainConfig, train  # noqa: E402
from simcity.config.scenario import Scenario, load_scenario  # noqa: E402

MODEL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)
ENCODER = ("node_embed.", "global_embed.", "blocks.")


def short(name: str, steps: int = 16) -> Scenario:
    scenario = load_scenario(name)
    return scenario.model_copy(
        update={"time": scenario.time.model_copy(update={"num_steps": steps})}
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small policy trained on the toy town."""
    out = tmp_path_factory.mktemp("source")
    config = TrainConfig(total_steps=64, num_envs=2, num_steps=32, model=MODEL, seed=1)
    return train(short("toy_hotspot"), config, out).checkpoint_path


def test_freezing_keeps_the_encoder_and_trains_the_heads(source: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        total_steps=64,
        num_envs=2,
        num_steps=32,
        model=MODEL,
        init_from=str(source),
        freeze_encoder=True,
    )
    tuned = load_checkpoint(train(short("tiny"), config, tmp_path).checkpoint_path).state_dict
    start = load_checkpoint(source).state_dict
    for key, value in start.items():
        same = torch.equal(value, tuned[key])
        assert same if key.startswith(ENCODER) else True, key
    heads = [k for k in start if not k.startswith(ENCODER)]
    assert not all(torch.equal(start[k], tuned[k]) for k in heads)  # the heads did learn


def test_fine_tuning_starts_from_the_checkpoint(source: Path, tmp_path: Path) -> None:
    """With learning rate 0 the fine-tuned weights are the checkpoint's, not a fresh init."""
    config = TrainConfig(
        total_steps=64, num_envs=2, num_steps=32, model=MODEL, lr=0.0, init_from=str(source)
    )
    tuned = load_checkpoint(train(short("tiny"), config, tmp_path).checkpoint_path).state_dict
    start = load_checkpoint(source).state_dict
    assert all(torch.equal(start[k], tuned[k]) for k in start)


def test_cli_compares_zero_shot_fine_tuned_and_scratch(source: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "ft"
    args = ["finetune", str(source), "tiny", "--steps", "32", "--episodes", "2", "--quiet"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "finetune.json").read_text())
    assert set(doc["kpis"]) == {"zero_shot", "finetuned", "scratch", "uniform", "risk"}
    assert doc["kpis"]["finetuned"]["money"]["mean"] > 0
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = runner.invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "fine-tuning run" in again.output
    missing = runner.invoke(app, ["finetune", str(tmp_path / "nope.pt"), "tiny", "--quiet"])
    assert missing.exit_code == 2 and "no such checkpoint" in missing.output
