"""The privileged teacher (a Bayes search on true rates reading the evidence) and DAgger."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.policies.attention import AttentionConfig, AttentionPolicy  # noqa: E402
from agents.policies.baselines import make_baseline  # noqa: E402
from agents.policies.checkpoint import TrainedPolicy, load_checkpoint  # noqa: E402
from agents.policies.teacher import EvidenceSearch  # noqa: E402
from agents.training.config import TeacherConfig  # noqa: E402
from agents.training.teacher import pretrain_from_teacher  # noqa: E402
from simcity.config.scenario import load_scenario  # noqa: E402
from simcity.env import CityEnv  # noqa: E402
from simcity.errors import SimcityError  # noqa: E402

MODEL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)


def warmed_env() -> tuple[CityEnv, dict[str, np.ndarray]]:
    """`tiny` a few uniform steps into a day (traffic simulated, so rates are known)."""
    env = CityEnv("tiny")
    obs, _ = env.reset(seed=11)
    uniform = make_baseline("uniform", env)
    for _ in range(4):
        obs, *_ = env.step(uniform.act(obs))
    return env, obs


def share(action: np.ndarray, node: int) -> float:
    return float(action[node] / action.sum())


def set_evidence(env: CityEnv, node: int, value: float) -> None:
    """Put anomaly evidence ``value`` on every quantity of ``node`` (through the world)."""
    assert env.world is not None
    anomaly = env.world.view.monitoring.anomaly.copy()
    anomaly[node, :] = value
    env.world.intervene(anomaly=anomaly)


def test_the_search_follows_the_evidence_and_gain_zero_ignores_it() -> None:
    env, obs = warmed_env()
    searches = {gain: EvidenceSearch(env, gain) for gain in (0.0, 0.5)}
    for search in searches.values():
        search.act(obs)  # first call: the belief starts from the rates' steady state
    before = {gain: search.act(obs) for gain, search in searches.items()}
    belief = searches[0.5].belief.copy()  # type: ignore[union-attr]
    node = int(np.argmin(before[0.5][:-1]))  # the node it watches least
    set_evidence(env, node, 10.0)  # strong evidence of an unexplained disturbance there
    after = {gain: search.act(obs) for gain, search in searches.items()}
    assert share(after[0.5], node) > share(before[0.5], node) + 0.05
    # Gain 0 reads no evidence: the same belief gives the same allocation (its belief
    # moves with a repeated call, as a new interval would move it, so compare fresh ones).
    fresh = [EvidenceSearch(env, 0.0) for _ in range(2)]
    for search in fresh:
        search.belief = belief.copy()
    set_evidence(env, node, 0.0)
    quiet = fresh[0].act(obs)
    set_evidence(env, node, 10.0)
    np.testing.assert_allclose(fresh[1].act(obs), quiet)
    assert after[0.5][-1] == 0.0  # the whole budget goes out


def test_pretraining_moves_the_student_to_the_teacher() -> None:
    env = CityEnv("tiny")
    config = TeacherConfig(days=3, dagger_rounds=1, dagger_days=2, epochs=15)
    torch.manual_seed(0)
    student = AttentionPolicy(MODEL)
    fresh = AttentionPolicy(MODEL)
    fresh.load_state_dict(student.state_dict())
    state = torch.get_rng_state()
    losses = pretrain_from_teacher(student, env, config, list(range(100, 105)))
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched
    assert len(losses) == 2 and all(np.isfinite(losses))

    def distance_to_teacher(model: AttentionPolicy) -> float:
        """Mean total-variation distance of the allocations on days neither has seen."""
        teacher, player = EvidenceSearch(env), TrainedPolicy(model, env)
        gaps = []
        for seed in (7, 8):
            obs, _ = env.reset(seed=seed)
            teacher.reset(seed)
            for _ in range(env.scenario.time.num_steps):
                target = teacher.act(obs)
                action = player.act(obs)
                gaps.append(0.5 * np.abs(target / target.sum() - action / action.sum()).sum())
                obs, *_ = env.step(action)
        return float(np.mean(gaps))

    assert distance_to_teacher(student) < 0.75 * distance_to_teacher(fresh)


@pytest.mark.parametrize(
    ("field", "value"),
    [("days", -1), ("dagger_rounds", -1), ("epochs", 0), ("lr", 0.0), ("gain", float("nan"))],
)
def test_bad_teacher_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(SimcityError, match=f"train.teacher.{field}"):
        TeacherConfig(**{field: value})  # type: ignore[arg-type]


def test_after_the_teacher_only_the_critic_trains_at_first(tmp_path: Path) -> None:
    """The run's first updates leave the distilled actor as it was; the critic moves."""
    from agents.training.train import TEACHER_ENV_INDEX, TrainConfig, episode_seed, train

    scenario = load_scenario("tiny")
    scenario = scenario.model_copy(
        update={"time": scenario.time.model_copy(update={"num_steps": 16})}
    )
    teacher = TeacherConfig(days=2, dagger_rounds=1, dagger_days=1, epochs=3, critic_updates=2)
    config = TrainConfig(
        total_steps=64, num_envs=2, num_steps=16, seed=5, model=MODEL, teacher=teacher
    )
    result = train(scenario, config, tmp_path)
    torch.manual_seed(config.seed)
    distilled = AttentionPolicy(MODEL)
    fresh_value_head = {k: v.clone() for k, v in distilled.value_head.state_dict().items()}
    seeds = [episode_seed(config.seed, TEACHER_ENV_INDEX, k) for k in range(3)]
    pretrain_from_teacher(distilled, CityEnv(scenario), teacher, seeds)
    trained = load_checkpoint(result.checkpoint_path).state_dict
    for key, value in distilled.state_dict().items():
        if key.startswith("value_head."):
            assert not torch.equal(trained[key], fresh_value_head[key.split(".", 1)[1]]), key
        else:
            assert torch.equal(trained[key], value), key


def test_simcity_train_defaults_to_the_configs_teacher_days() -> None:
    import inspect

    from agents.cli.main import train_command

    assert inspect.signature(train_command).parameters["teacher_days"].default == (
        TeacherConfig().days
    )
