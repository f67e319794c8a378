"""Transfer: adapt a policy trained on one city to another, against training from scratch.

`finetune` trains, on the new scenario and for the same number of env steps, (a) the
checkpoint's weights (``TrainConfig.init_from``; with ``freeze_encoder`` only the heads
and the action std learn) and (b) a fresh policy of the same shape from the same seed.
It then plays the checkpoint zero-shot, both results, and the uniform and risk
heuristics on the same test days (`agents.training.seeds.test_seeds`: the comparison is the
report, nothing is chosen from it), and writes ``finetune.json`` (every KPI, mean and
95% interval) and ``curves.png`` (mean episode reward against env steps for both runs).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.data import pretrained_checkpoint
from agents.policies.baselines import make_baseline
from agents.policies.checkpoint import TrainedPolicy, load_checkpoint
from agents.policies.protocol import Policy
from agents.training.config import TeacherConfig
from agents.training.evaluate import compare_policies
from agents.training.seeds import test_seeds
from agents.training.train import TrainConfig, UpdateStats, train
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.records.files import write_atomic, write_atomic_bytes

RUNS = ("zero_shot", "finetuned", "scratch")


def finetune(
    checkpoint: str | Path | None,
    scenario: str | Path | Scenario,
    out_dir: str | Path,
    *,
    steps: int,
    freeze_encoder: bool = False,
    seed: int = 0,
    episodes: int = 10,
    progress: Callable[[str, UpdateStats], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune ``checkpoint`` (None: the shipped generalist, `agents.data`) on
    ``scenario`` and compare (module doc); returns the doc."""
    if checkpoint is None:
        checkpoint = pretrained_checkpoint()
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    model_config = load_checkpoint(checkpoint).model_config
    # PPO alone in both runs (no teacher): the comparison is of where PPO starts from.
    scratch = TrainConfig(
        total_steps=steps, seed=seed, model=model_config, teacher=TeacherConfig(days=0)
    )
    tuned = dataclasses.replace(
        scratch, init_from=str(checkpoint.resolve()), freeze_encoder=freeze_encoder
    )
    results = {}
    for name, config in (("finetuned", tuned), ("scratch", scratch)):

        def tick(stats: UpdateStats, run: str = name) -> None:
            if progress is not None:
                progress(run, stats)

        results[name] = train(scenario, config, out_dir / name, progress=tick)
    env = CityEnv(scenario)
    players: list[Policy] = []
    for name, path in (
        ("zero_shot", checkpoint),
        ("finetuned", results["finetuned"].checkpoint_path),
        ("scratch", results["scratch"].checkpoint_path),
    ):
        policy = TrainedPolicy.from_checkpoint(path, env)
        policy.name = name
        players.append(policy)
    players += [make_baseline(name, env) for name in ("uniform", "risk")]
    seeds = test_seeds(episodes)
    table = compare_policies(env, players, seeds)
    curves = {name: _curve(results[name].progress_path) for name in ("finetuned", "scratch")}
    doc: dict[str, Any] = {
        "checkpoint": str(checkpoint),
        "scenario": scenario.name,
        "steps": steps,
        "freeze_encoder": freeze_encoder,
        "seed": seed,
        "episodes": episodes,
        "split": "test",
        "seeds": seeds,
        "kpis": table,
        "curves": curves,
    }
    write_atomic(out_dir / "finetune.json", json.dumps(doc, indent=2) + "\n")
    _plot_curves(curves, out_dir / "curves.png", scenario.name)
    return doc


def _curve(progress_csv: Path) -> list[tuple[int, float]]:
    """(env step, mean episode reward) of the updates in which episodes ended."""
    with progress_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        (int(r["step"]), float(r["mean_episode_reward"])) for r in rows if int(r["episodes"]) > 0
    ]


def _plot_curves(curves: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    """Learning curves of both runs as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for name, points in curves.items():
        if points:
            steps, rewards = zip(*points, strict=True)
            ax.plot(steps, rewards, marker="o", markersize=3, label=name)
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean episode reward")
    ax.set_title(f"{title}: fine-tuned vs from scratch")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic_bytes(path, buffer.getvalue())
