"""One policy for many cities: the city distribution, a tiny generalist run, the CLI's
``--policy pretrained`` and ``finetune`` from the shipped checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

import agents.data  # noqa: E402
from agents.cli.main import app  # noqa: E402
from agents.policies.attention import AttentionConfig, AttentionPolicy  # noqa: E402
from agents.policies.checkpoint import TrainedPolicy, load_checkpoint  # noqa: E402
from agents.training.config import TeacherConfig, TrainConfig  # noqa: E402
from agents.training.evaluate import run_episode  # noqa: E402
from agents.training.generalist import (  # noqa: E402
    CITY_SEED_BASE,
    CityStats,
    sample_city,
    train_generalist,
)
from simcity.config.city import GeneratedCity  # noqa: E402
from simcity.config.scenario import Scenario, bundled_scenarios, load_scenario  # noqa: E402
from simcity.env import CityEnv  # noqa: E402
from simcity.errors import SimcityError  # noqa: E402

MODEL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)
runner = CliRunner()


def short(scenario: Scenario, steps: int = 16) -> Scenario:
    return scenario.model_copy(
        update={"time": scenario.time.model_copy(update={"num_steps": steps})}
    )


def nodes(scenario: Scenario) -> int:
    """Nodes of a generated city, from its section (no build)."""
    assert isinstance(scenario.city, GeneratedCity)
    return scenario.city.size().num_nodes


def test_sample_city_draws_valid_cities_of_every_layout_and_size() -> None:
    base = load_scenario("tiny")
    rng = np.random.default_rng(7)
    cities = [sample_city(rng, base) for _ in range(120)]
    sizes = np.array([nodes(c) for c in cities])
    assert sizes.min() >= 50 and sizes.max() <= 1000
    assert 0.7 <= float(np.mean(sizes < 250)) <= 0.97  # mostly small, a few large
    assert Counter(c.city.source for c in cities).keys() == {
        "grid",
        "ring_radial",
        "random_geometric",
    }
    assert {c.carbon.source for c in cities} == {"trace", "constant", "daily"}
    assert all(c.seed >= CITY_SEED_BASE for c in cities)  # never a bundled city's seed
    assert not {c.name for c in cities} & set(bundled_scenarios())
    budgets = [c.monitoring.budget_units / nodes(c) for c in cities]
    assert min(budgets) >= 0.0099 and max(budgets) <= 0.5 + 1 / 50
    assert len({c.compute.price_per_kwh for c in cities}) == len(cities)  # drawn per city
    for city in cities[:3]:  # a city is built as drawn
        assert CityEnv(city).city.num_nodes == nodes(city)
    small = [sample_city(rng, base, max_nodes=80) for _ in range(20)]
    assert all(50 <= nodes(c) <= 80 for c in small)


def test_sample_city_is_deterministic_per_seed() -> None:
    base = load_scenario("tiny")
    one = [sample_city(np.random.default_rng(3), base) for _ in range(2)]
    assert one[0] == one[1]
    assert sample_city(np.random.default_rng(4), base) != one[0]


@pytest.fixture(scope="module")
def generalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generalist: two small cities of short days, few steps."""
    out = tmp_path_factory.mktemp("generalist")
    teacher = TeacherConfig(days=1, dagger_rounds=1, dagger_days=1, epochs=2)
    config = TrainConfig(num_envs=2, num_steps=16, model=MODEL, teacher=teacher, seed=2)
    seen: list[CityStats] = []
    result = train_generalist(
        config,
        out,
        num_cities=2,
        updates_per_city=2,
        base=short(load_scenario("tiny")),
        max_nodes=70,
        progress=seen.append,
    )
    assert [s.index for s in seen] == [0, 1] and result.update == 4
    assert result.step == 2 * 2 * 2 * 16  # cities x updates x envs x steps
    assert all(50 <= s.num_nodes <= 70 for s in seen)
    assert seen[0].scenario != seen[1].scenario
    return result.checkpoint_path


def test_generalist_checkpoint_plays_on_any_city(generalist: Path) -> None:
    checkpoint = load_checkpoint(generalist)
    assert checkpoint.update == 4 and checkpoint.extra["generalist"]["cities"] == 2
    torch.manual_seed(2)  # the run's seed: its fresh network
    fresh = AttentionPolicy(MODEL).state_dict()
    trained = checkpoint.build_model().state_dict()
    assert not all(torch.equal(v, trained[k]) for k, v in fresh.items())  # it learnt
    other = sample_city(np.random.default_rng(2**33), short(load_scenario("tiny")), max_nodes=90)
    for scenario in (short(load_scenario("tiny")), other):
        env = CityEnv(scenario)
        policy = TrainedPolicy.from_checkpoint(generalist, env)
        episode = run_episode(env, policy, seed=5)
        assert len(episode.infos) == 16 and np.isfinite(episode.summary["money"])
        action = policy.act(env.reset(seed=1)[0])
        assert action.shape == (env.city.num_nodes + 1,) and np.all(action >= 0)


def test_cli_runs_and_finetunes_the_pretrained_policy(
    generalist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agents.data, "PRETRAINED_FILE", generalist)
    result = runner.invoke(app, ["run", "tiny", "--policy", "pretrained", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "pretrained" in result.output and "detection rate" in result.output
    out = tmp_path / "ft"
    args = ["finetune", "tiny", "--steps", "32", "--episodes", "2", "--quiet", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "finetune.json").read_text())
    assert doc["checkpoint"] == str(generalist)  # started from the shipped one
    assert {"zero_shot", "finetuned", "scratch"} <= set(doc["kpis"])
    monkeypatch.setattr(agents.data, "PRETRAINED_FILE", tmp_path / "missing.pt")
    result = runner.invoke(app, ["run", "tiny", "--policy", "pretrained", "--quiet"])
    assert result.exit_code == 2 and "pretrained generalist is missing" in result.output
    with pytest.raises(SimcityError, match="missing"):
        agents.data.pretrained_checkpoint()


def test_pretrained_on_a_tiered_scenario_is_a_clear_error(
    generalist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agents.data, "PRETRAINED_FILE", generalist)
    result = runner.invoke(app, ["run", "downtown_vlm", "--policy", "pretrained", "--quiet"])
    assert result.exit_code == 2, result.output
    assert "analytics tier" in result.output and "Traceback" not in result.output


def test_cli_trains_a_generalist(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    args = ["train-generalist", "--cities", "1", "--max-nodes", "55", "--updates-per-city", "1"]
    args += ["--teacher-days", "0", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "city 1/1" in result.output
    doc = json.loads((out / "generalist.json").read_text())
    assert doc["steps"] == 4 * 96 and len(doc["cities"]) == 1
    load_checkpoint(out / "checkpoint.pt")
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already holds a checkpoint" in again.output


NO_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

sys.meta_path.insert(0, NoTorch())
"""


@pytest.mark.parametrize(
    "args",
    [("run", "tiny", "--policy", "pretrained", "--quiet"), ("train-generalist", "--out", "g")],
)
def test_without_torch_the_generalist_commands_say_so_in_one_line(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    """As `tests/agents/test_light_install.py` checks for the other commands."""
    root = Path(__file__).resolve().parents[2]
    code = (
        f"{NO_TORCH}\nsys.path.insert(0, {str(root)!r})\nfrom agents.cli.main import app\n"
        f"sys.argv = ['simcity', *{list(args)!r}]\napp()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs torch" in lines[0], result.stderr


def test_the_shipped_generalist_plays_any_city_and_says_how_it_was_made() -> None:
    path = agents.data.pretrained_checkpoint()
    checkpoint = load_checkpoint(path)
    assert checkpoint.model_config == AttentionConfig()  # the default network, 1 tier
    assert path.stat().st_size < 1_000_000
    doc = json.loads(path.with_suffix(".json").read_text())
    assert doc["command"].startswith("simcity train-generalist") and len(doc["commit"]) == 40
    assert len(doc["cities"]) == doc["cities_planned"] and doc["steps"] == checkpoint.step
    trained_on = {c["scenario"] for c in doc["cities"]}
    assert not trained_on & set(bundled_scenarios())
    result = runner.invoke(app, ["run", "tiny", "--policy", "pretrained", "--quiet"])
    assert result.exit_code == 0, result.output
