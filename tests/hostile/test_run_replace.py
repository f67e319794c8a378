"""A run folder is replaced whole or not at all: a full disk or a kill at any point of
`simcity run --out D` leaves the earlier run in D (or, past the swap, the new one), never
a mixture, and files of the old run (its map.html) do not survive into the new one; a second
process writing the same folder meanwhile is refused (issue 22 item 5)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_outputs import refused, runner, snapshot

import simcity.records.files as files
import simcity.records.runfolder as runfolder
from agents.cli.main import app
from simcity.errors import SimcityError
from simcity.records.daylog import read_day_log
from simcity.records.runfolder import RUN_FILES, write_run_folder

RUN = ["run", "tiny", "--quiet", "--seed", "1", "--out"]


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of `tiny` (seed 0) with its map drawn: the run the tests try to replace."""
    out = tmp_path_factory.mktemp("earlier") / "run"
    assert runner.invoke(app, ["run", "tiny", "--quiet", "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, ["map", str(out)]).exit_code == 0
    return out


@pytest.fixture
def run_dir(earlier: Path, tmp_path: Path) -> Path:
    target = tmp_path / "D"
    shutil.copytree(earlier, target)
    return target


def new_files(earlier: Path) -> dict[str, bytes]:
    """The files of a run (another run's, with one change) to write over ``earlier``."""
    out = {name: (earlier / name).read_bytes() for name in RUN_FILES}
    out["episodes.json"] = b"[]\n"
    return out


def leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.parent.iterdir() if p.name != run_dir.name)


def test_a_new_run_replaces_the_old_one_whole(run_dir: Path) -> None:
    old_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    assert (run_dir / "map.html").is_file()
    result = runner.invoke(app, [*RUN, str(run_dir)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in run_dir.iterdir()}
    assert names == RUN_FILES | {"run.json"}  # the old map.html is gone with the old run
    assert json.loads((run_dir / "run.json").read_text())["run_id"] != old_id
    assert read_day_log(run_dir).seed == 1
    assert leftovers(run_dir) == []
    assert runner.invoke(app, ["map", str(run_dir)]).exit_code == 0  # a later map is part of it
    assert runner.invoke(app, ["report", str(run_dir), "--no-map"]).exit_code == 0


@pytest.mark.parametrize("failing_write", [1, 4, 8])
def test_a_full_disk_leaves_the_earlier_run_intact(
    failing_write: int, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(run_dir.parent)
    calls = 0
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == failing_write:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    result = refused([*RUN, str(run_dir)], contains="no space left on device", after_work=True)
    assert "earlier run there is left as it was" in " ".join(result.output.split())
    monkeypatch.undo()
    assert snapshot(run_dir.parent) == before
    assert read_day_log(run_dir).seed == 0


@pytest.mark.parametrize("killed_at_write", [1, 5, 8])
def test_a_kill_while_writing_leaves_the_earlier_run(
    killed_at_write: int, run_dir: Path, earlier: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == killed_at_write:
            raise KeyboardInterrupt
        real_fsync(fd)

    before = snapshot(run_dir)
    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(KeyboardInterrupt):
        write_run_folder(run_dir, new_files(earlier))
    assert snapshot(run_dir) == before


def test_a_kill_after_the_exchange_leaves_the_new_run(
    run_dir: Path, earlier: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runfolder.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        write_run_folder(run_dir, new_files(earlier))
    monkeypatch.undo()
    assert (run_dir / "episodes.json").read_bytes() == b"[]\n"
    assert not (run_dir / "map.html").exists()
    assert runner.invoke(app, ["map", str(run_dir), "-o", str(run_dir / "m.html")]).exit_code == 0


def test_without_an_atomic_exchange_a_kill_between_renames_is_recovered(
    run_dir: Path, earlier: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback: old renamed away, then killed before the new one is renamed in."""
    before = snapshot(run_dir)
    renames = 0
    real_rename = os.rename

    def rename(a: object, b: object) -> None:
        nonlocal renames
        renames += 1
        if renames == 2:
            raise KeyboardInterrupt
        real_rename(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(runfolder, "_exchange", lambda a, b: False)
    monkeypatch.setattr(runfolder.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        write_run_folder(run_dir, new_files(earlier))
    monkeypatch.undo()
    refused(["map", str(run_dir), "-o", str(run_dir.parent / "m.html")], contains="interrupted")
    result = runner.invoke(app, [*RUN, str(run_dir)])  # puts the old run back, then replaces it
    assert result.exit_code == 0, result.output
    assert read_day_log(run_dir).seed == 1 and leftovers(run_dir) == []
    del before


def test_the_fallback_swap_replaces_whole(
    run_dir: Path, earlier: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runfolder, "_exchange", lambda a, b: False)
    write_run_folder(run_dir, new_files(earlier))
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES | {"run.json"}
    assert leftovers(run_dir) == []
    assert read_day_log(run_dir).seed == 0


@pytest.mark.parametrize("entry", ["notes.txt", "photo.png", "a folder", "a link", "a fifo"])
def test_a_folder_that_is_not_a_run_is_never_replaced(entry: str, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "steps.csv").write_text("mine")
    if entry in ("notes.txt", "photo.png"):
        (target / entry).write_text("keep")
    elif entry == "a folder":
        (target / "photos").mkdir()
    elif entry == "a link":
        (target / "map.html").symlink_to("/etc/hostname")
    else:
        os.mkfifo(target / "summary.json")
    before = snapshot(tmp_path)
    refused([*RUN, str(target)], contains="will not be replaced")
    assert snapshot(tmp_path) == before


def test_write_run_folder_refuses_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not run files"):
        write_run_folder(tmp_path / "D", {"../escape": b""})
    with pytest.raises(SimcityError, match="not a folder"):
        (tmp_path / "file").write_text("x")
        write_run_folder(tmp_path / "file", {"steps.csv": b""})


HOLD = """
import sys
from pathlib import Path
from simcity.records.runfolder import run_folder_lock
with run_folder_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def holder(run_dir: Path) -> subprocess.Popen[str]:
    """Another process holding ``run_dir``'s writer lock until its stdin is closed."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_second_writer_is_refused_while_another_process_writes(
    run_dir: Path, earlier: Path
) -> None:
    before = snapshot(run_dir.parent)
    proc = holder(run_dir)
    try:
        refused(
            [*RUN, str(run_dir)],
            contains="another simcity process is writing this run folder",
            after_work=True,
        )
        with pytest.raises(SimcityError, match="another simcity process") as err:
            write_run_folder(run_dir, new_files(earlier))
        assert err.value.file == str(run_dir)
        lock_file = {f".{run_dir.name}.lock": hashlib.sha256(b"").hexdigest()}
        assert snapshot(run_dir.parent) == {**before, **lock_file}  # nothing else touched
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    assert leftovers(run_dir) == []  # the holder removed its lock file
    result = runner.invoke(app, [*RUN, str(run_dir)])  # now the only writer: it replaces
    assert result.exit_code == 0, result.output
    assert f"replaced the earlier run in {run_dir}" in " ".join(result.output.split())
    assert read_day_log(run_dir).seed == 1 and leftovers(run_dir) == []


def test_a_killed_writer_s_lock_file_blocks_nothing(run_dir: Path, earlier: Path) -> None:
    proc = holder(run_dir)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert leftovers(run_dir) == [f".{run_dir.name}.lock"]  # left behind, but unlocked
    write_run_folder(run_dir, new_files(earlier))
    assert (run_dir / "episodes.json").read_bytes() == b"[]\n" and leftovers(run_dir) == []


def test_a_lock_file_removed_under_a_waiter_is_not_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that locked a lock file its predecessor had just removed locks a new one, so
    two writers never both believe they hold the lock."""
    target = tmp_path / "D"
    path = runfolder.lock_path(target)
    real_flock = runfolder.fcntl.flock
    flocks = 0

    def flock(fd: int, operation: int) -> None:
        nonlocal flocks
        flocks += 1
        real_flock(fd, operation)
        if flocks == 1:  # the previous holder unlinks the file now, after our open
            path.unlink()

    monkeypatch.setattr(runfolder.fcntl, "flock", flock)
    with runfolder.run_folder_lock(target):
        assert flocks == 2 and path.exists()
        monkeypatch.undo()
        with (
            pytest.raises(SimcityError, match="another simcity process"),
            runfolder.run_folder_lock(target),
        ):
            pass
    assert not path.exists()
