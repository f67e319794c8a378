"""Kill safety of training: teacher checkpoints, exact resume, and progress.csv never lost."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from agents.policies.attention import AttentionConfig  # noqa: E402
from agents.training import teacher_checkpoint  # noqa: E402
from agents.training.config import TeacherConfig  # noqa: E402
from agents.training.teacher import teacher_rounds  # noqa: E402
from agents.training.train import TrainConfig, UpdateStats, train  # noqa: E402
from simcity.config.scenario import Scenario, load_scenario  # noqa: E402
from simcity.errors import SimcityError  # noqa: E402

MODEL = AttentionConfig(d_model=16, num_heads=2, num_layers=1, num_neighbours=4)
# Teacher: 2 posterior days, fit 2 epochs; 1 DAgger day, fit 1 epoch. Its checkpoints, at
# interval 0: day, day, epoch, epoch, day, epoch, done.
CONFIG = TrainConfig(
    total_steps=96,
    num_envs=2,
    num_steps=24,
    update_epochs=2,
    num_minibatches=2,
    seed=3,
    model=MODEL,
    teacher=TeacherConfig(days=2, dagger_rounds=1, dagger_days=1, epochs=2, critic_updates=1),
)


class StopRunError(Exception):
    pass


def short_tiny() -> Scenario:
    scenario = load_scenario("tiny")
    return scenario.model_copy(update={"time": scenario.time.model_copy(update={"num_steps": 16})})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The weights of the run never stopped."""
    out = tmp_path_factory.mktemp("whole")
    result = train(short_tiny(), CONFIG, out, teacher_checkpoint_s=0)
    assert not (out / "teacher.pt").exists()  # the PPO checkpoint made it obsolete
    return weights(result.checkpoint_path)


@pytest.mark.parametrize(
    ("writes", "where"),
    [(1, (0, 1, 0)), (3, (0, 2, 1)), (5, (1, 1, 0)), (6, (1, 1, 1)), (7, (2, 0, 0))],
    ids=["labelling", "mid-fit", "dagger-day", "dagger-fit", "stage-done"],
)
def test_a_run_stopped_in_the_teacher_stage_resumes_bit_for_bit(
    whole: dict[str, torch.Tensor],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    writes: int,
    where: tuple[int, int, int],
) -> None:
    write = teacher_checkpoint.TeacherCheckpoints.write
    count = 0

    def write_then_stop(self: object, *args: object) -> None:
        nonlocal count
        write(self, *args)  # type: ignore[arg-type]
        count += 1
        if count == writes:
            raise StopRunError

    with monkeypatch.context() as patch:
        patch.setattr(teacher_checkpoint.TeacherCheckpoints, "write", write_then_stop)
        with pytest.raises(StopRunError):
            train(short_tiny(), CONFIG, tmp_path, teacher_checkpoint_s=0)
    saved = torch.load(tmp_path / "teacher.pt", weights_only=True)
    assert (saved["round"], saved["days_done"], saved["epochs_done"]) == where
    assert not (tmp_path / "checkpoint.pt").exists()
    resumed = train(short_tiny(), CONFIG, tmp_path, resume=True, teacher_checkpoint_s=0)
    assert_same_weights(weights(resumed.checkpoint_path), whole)
    assert not (tmp_path / "teacher.pt").exists()


def test_a_teacher_checkpoint_of_another_run_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write = teacher_checkpoint.TeacherCheckpoints.write

    def write_then_stop(self: object, *args: object) -> None:
        write(self, *args)  # type: ignore[arg-type]
        raise StopRunError

    with monkeypatch.context() as patch:
        patch.setattr(teacher_checkpoint.TeacherCheckpoints, "write", write_then_stop)
        with pytest.raises(StopRunError):
            train(short_tiny(), CONFIG, tmp_path, teacher_checkpoint_s=0)
    other = TrainConfig(**{**CONFIG.__dict__, "seed": 4})
    with pytest.raises(SimcityError, match=r"teacher\.pt: train\.seed"):
        train(short_tiny(), other, tmp_path, resume=True)


KILLED_RUN = """
from agents.policies.attention import AttentionConfig
from agents.training.config import TeacherConfig
from agents.training.train import TrainConfig, train
from simcity.config.scenario import load_scenario

d = {config!r}
config = TrainConfig(
    **{{**d, "model": AttentionConfig(**d["model"]), "teacher": TeacherConfig(**d["teacher"])}}
)
scenario = load_scenario("tiny")
day = scenario.time.model_copy(update={{"num_steps": 16}})
scenario = scenario.model_copy(update={{"time": day}})
train(scenario, config, {out!r}, teacher_checkpoint_s=0)
"""
# A longer teacher stage, so the kill lands inside it.
SLOW_CONFIG = TrainConfig(
    **{
        **CONFIG.__dict__,
        "teacher": TeacherConfig(
            days=6, dagger_rounds=1, dagger_days=3, epochs=4, critic_updates=1
        ),
    }
)


def test_sigkill_in_the_teacher_stage_then_resume_gives_the_unkilled_result(
    tmp_path: Path,
) -> None:
    out = tmp_path / "killed"
    code = KILLED_RUN.format(config=SLOW_CONFIG.as_dict(), out=str(out))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 240
        while not (out / "teacher.pt").exists():
            assert process.poll() is None, "the run ended before its first teacher checkpoint"
            assert time.monotonic() < deadline, "no teacher checkpoint in 240 s"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "checkpoint.pt").exists()  # killed before any PPO checkpoint
    saved = torch.load(out / "teacher.pt", weights_only=True)
    assert saved["round"] < len(teacher_rounds(SLOW_CONFIG.teacher))  # inside the stage

    resumed = train(short_tiny(), SLOW_CONFIG, out, resume=True)
    unkilled = train(short_tiny(), SLOW_CONFIG, tmp_path / "unkilled")
    assert_same_weights(weights(resumed.checkpoint_path), weights(unkilled.checkpoint_path))
    with resumed.progress_path.open() as f:
        assert [int(r["update"]) for r in csv.DictReader(f)] == [1, 2]


def test_resume_replaces_progress_csv_never_truncating_it_in_place(tmp_path: Path) -> None:
    config = TrainConfig(**{**CONFIG.__dict__, "teacher": TeacherConfig(days=0)})

    def stop_after_two(stats: UpdateStats) -> None:
        if stats.update == 2:
            raise StopRunError

    interrupted = TrainConfig(**{**config.__dict__, "total_steps": 144, "checkpoint_every": 1})
    with pytest.raises(StopRunError):
        train(short_tiny(), interrupted, tmp_path, progress=stop_after_two)
    progress = tmp_path / "progress.csv"
    before = progress.read_text()
    with progress.open("a") as f:
        f.write("3,3,144,0.1")  # a row torn by a kill mid-append
    os.link(progress, tmp_path / "old.csv")  # the inode a rewrite in place would clobber
    train(short_tiny(), interrupted, tmp_path, resume=True)
    assert (tmp_path / "old.csv").read_text() == before + "3,3,144,0.1"  # untouched
    with progress.open() as f:
        assert [int(r["update"]) for r in csv.DictReader(f)] == [1, 2, 3]


def test_a_damaged_progress_csv_is_a_clear_error(tmp_path: Path) -> None:
    config = TrainConfig(**{**CONFIG.__dict__, "teacher": TeacherConfig(days=0)})
    train(short_tiny(), config, tmp_path)
    progress = tmp_path / "progress.csv"
    lines = progress.read_text().splitlines()
    resumed = TrainConfig(**{**config.__dict__, "total_steps": 144})
    for damaged, field in [
        ([lines[0], "garbage,row", lines[1]], "line 2"),
        (["not,the,header", *lines[1:]], "header"),
        ([lines[0], lines[1], lines[1]], "line 3"),
    ]:
        progress.write_text("\n".join(damaged) + "\n")
        with pytest.raises(SimcityError, match=f"progress.csv: {field}"):
            train(short_tiny(), resumed, tmp_path, resume=True)
        assert progress.read_text() == "\n".join(damaged) + "\n"  # left as it was
