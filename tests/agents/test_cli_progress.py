"""Long commands say what they do (issue 22): progress lines off a terminal with the
stage, the training plan and its too-short warning, resumes that keep or change the
plan, and a checkpoint from the first update and the teacher's first day."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402 (after the importorskip above)

from agents.cli.main import app  # noqa: E402
from agents.policies.attention import AttentionConfig  # noqa: E402
from agents.policies.checkpoint import load_checkpoint  # noqa: E402
from agents.training.config import TeacherConfig, TrainConfig  # noqa: E402
from agents.training.train import UpdateStats, train  # noqa: E402
from agents.training.train_io import describe_plan, describe_resume  # noqa: E402
from simcity.config.scenario import Scenario, load_scenario  # noqa: E402

runner = CliRunner()
LINE = re.compile(r"^(?P<stage>.+): (?P<done>\d+)/(?P<total>\d+) \((?P<pct>\d+)%\), [\d:]+ elapsed")


def lines(text: str) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, text.splitlines()) if m is not None]


def test_run_off_a_terminal_prints_progress_lines_with_the_stage() -> None:
    result = runner.invoke(app, ["run", "tiny", "--episodes", "2"])
    assert result.exit_code == 0, result.output
    said = lines(result.stderr)
    assert {m["stage"] for m in said} == {"tiny / risk"}
    # One line at the start and one per tenth: 0%, 10%, ..., 100% of 2 days of steps.
    assert [int(m["pct"]) for m in said] == list(range(0, 101, 10))
    assert said[-1]["done"] == said[-1]["total"]
    assert lines(runner.invoke(app, ["run", "tiny", "--quiet"]).stderr) == []


def test_train_says_its_plan_warns_when_too_short_and_shows_its_stages(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "tiny", "--steps", "400", "--teacher-days", "1", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "plan: 1 teacher days (+16 DAgger), then 2 PPO updates of 384 steps = 768 env steps "
        "(asked 400, rounded up to whole rollouts); the first 10 updates train only the critic"
    ) in result.stdout
    assert "warning: too short: all 2 PPO updates are the critic-only warm-up" in result.stderr
    assert "use --steps above 3,840 (11 updates or more)" in result.stderr
    stages = [m["stage"] for m in lines(result.stderr)]
    for stage in ("teacher days", "teacher fit 1/2", "teacher DAgger days", "teacher fit 2/2"):
        assert f"tiny / {stage}" in stages
    said = lines(result.stderr)
    assert said[-1]["stage"] == "tiny / ppo critic warm-up" and said[-1]["done"] == "2"

    # --resume without --steps keeps the plan; a larger --steps is a new one, said so.
    same = runner.invoke(app, [*args[:2], "--teacher-days", "1", "--out", str(out), "--resume"])
    assert same.exit_code == 0, same.output
    assert "768 env steps (asked 400, rounded up" in same.stdout  # the checkpoint's plan
    assert "continues the planned run of 2 updates" in same.stdout
    longer = runner.invoke(app, [*args[:2], "--steps", "1152", *args[4:], "--resume"])
    assert longer.exit_code == 0, longer.output
    assert "a new plan: the checkpoint planned 2 updates (400 steps)" in longer.stderr
    assert "re-planned over 3 updates" in longer.stderr
    assert load_checkpoint(out / "checkpoint.pt").update == 3
    empty = runner.invoke(app, ["train", "tiny", "--out", str(tmp_path / "none"), "--resume"])
    assert empty.exit_code == 2 and "holds no checkpoint.pt or teacher.pt" in empty.output


def test_a_run_long_enough_gets_no_warning() -> None:
    assert describe_plan(TrainConfig(total_steps=3_840), 3_840)[1] is not None  # 10 updates
    assert describe_plan(TrainConfig(total_steps=3_841), 3_841)[1] is None  # 11
    config = TrainConfig(total_steps=20_480)
    plan, warning = describe_plan(config, 20_480)
    assert warning is None
    assert "54 PPO updates of 384 steps = 20,736 env steps (asked 20,480" in plan
    scratch, warning = describe_plan(TrainConfig(total_steps=384, teacher=TeacherConfig(0)), 384)
    assert scratch == "plan: 1 PPO updates of 384 steps = 384 env steps" and warning is None


MODEL_CONFIG = TrainConfig(
    total_steps=144,
    num_envs=2,
    num_steps=24,
    update_epochs=2,
    num_minibatches=2,
    seed=5,
    model=AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4),
    checkpoint_every=10,  # the first checkpoint of the loop would be at update 3, the end
    teacher=TeacherConfig(days=2, dagger_rounds=1, dagger_days=1, epochs=2, critic_updates=1),
)


@pytest.fixture(scope="module")
def short_day() -> Scenario:
    scenario = load_scenario("tiny")
    return scenario.model_copy(update={"time": scenario.time.model_copy(update={"num_steps": 16})})


def _interrupt(when: int) -> Callable[[UpdateStats], None]:
    def progress(stats: UpdateStats) -> None:
        if stats.update == when:
            raise KeyboardInterrupt

    return progress


def test_ctrl_c_after_the_first_update_resumes_to_the_uninterrupted_result(
    short_day: Scenario, tmp_path: Path
) -> None:
    config = MODEL_CONFIG
    whole = train(short_day, config, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(short_day, config, tmp_path / "cut", progress=_interrupt(1))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt").update == 1
    resumed = train(short_day, config, tmp_path / "cut", resume=True)
    assert resumed.update == whole.update == 3
    a = load_checkpoint(whole.checkpoint_path).state_dict
    b = load_checkpoint(resumed.checkpoint_path).state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_on_the_teachers_first_day_leaves_a_teacher_checkpoint(
    short_day: Scenario, tmp_path: Path
) -> None:
    seen: list[tuple[str, int, int]] = []

    def stage(name: str, done: int, total: int) -> None:
        seen.append((name, done, total))
        if (name, done) == ("teacher days", 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(short_day, MODEL_CONFIG, tmp_path / "cut", stage=stage, teacher_checkpoint_s=1e9)
    assert seen == [("teacher days", 0, 2), ("teacher days", 1, 2)]
    assert (tmp_path / "cut" / "teacher.pt").is_file()
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()
    seen.clear()
    resumed = train(
        short_day, MODEL_CONFIG, tmp_path / "cut", resume=True, stage=lambda *s: seen.append(s)
    )
    assert seen[0] == ("teacher days", 1, 2)  # the stage goes on from its first day
    whole = train(short_day, MODEL_CONFIG, tmp_path / "whole")
    a = load_checkpoint(whole.checkpoint_path).state_dict
    b = load_checkpoint(resumed.checkpoint_path).state_dict
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_says_whether_it_keeps_the_plan() -> None:
    text, same = describe_resume(TrainConfig(total_steps=1152), 400, "checkpoint.pt")
    assert not same and "re-planned over 3 updates" in text
    text, same = describe_resume(TrainConfig(total_steps=1152), 400, "teacher.pt")
    assert same and "PPO has not started" in text  # the schedule is not begun yet
    assert describe_resume(TrainConfig(total_steps=768), 400, "checkpoint.pt")[1]  # 2 updates
