"""Hostile output paths for every command that writes: refused before any work, in one
line with exit 2, and nothing at or around the path changed (a FIFO stays a FIFO, a device
a device, a file above stays that file). Also `write_atomic` against what may appear at its
target while it writes, and a full disk."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from hostile_outputs import read_only, refused, snapshot

import simcity.records.files as files
from simcity.errors import SimcityError
from simcity.records.files import write_atomic, write_atomic_bytes

CKPT = "nowhere/checkpoint.pt"  # never read: --out is refused first
RUN = "nowhere-run"
# (label, argv with OUT where the path goes, the first file the command writes in OUT)
DIR_COMMANDS = [
    ("run", ["run", "tiny", "--quiet", "--out", "OUT"], "steps.csv"),
    ("train", ["train", "tiny", "--quiet", "--out", "OUT"], "progress.csv"),
    ("finetune", ["finetune", CKPT, "tiny", "--quiet", "--out", "OUT"], "finetune.json"),
    ("eval", ["eval", CKPT, "tiny", "--quiet", "--out", "OUT"], "eval.csv"),
    ("sweep", ["sweep", "small", "--quiet", "--out", "OUT"], "results.csv"),
    ("pareto", ["pareto", "tiny", "--quiet", "--out", "OUT"], "points.csv"),
    ("compress", ["compress", CKPT, "tiny", "--method", "int8", "--out", "OUT"], "policy.pt"),
    ("explain", ["explain", CKPT, "tiny", "--at", "08:00", "--out", "OUT"], "explain.json"),
]
FILE_COMMANDS = [
    ("map --out", ["map", RUN, "--out", "OUT"]),
    ("map --png", ["map", RUN, "--png", "OUT"]),
    ("map --screenshot", ["map", RUN, "--screenshot", "OUT"]),
    ("report --out", ["report", RUN, "--out", "OUT"]),
    ("report --screenshot", ["report", RUN, "--screenshot", "OUT"]),
    ("calibrate --out", ["calibrate", "--device", "cpu", "--out", "OUT"]),
]
COMMON_KINDS = [
    "below_a_file",
    "proc",
    "long_name",
    "read_only",
    "fifo",
    "device",
    "dangling_link",
    "link_to_device",
    "nul_byte",
]


def hostile_path(kind: str, base: Path, inner: str = "") -> Path | str:
    """Make what ``kind`` needs under ``base`` and return the path to hand to --out."""
    if kind == "below_a_file":
        (base / "afile").write_text("keep me")
        return base / "afile" / "sub"
    if kind == "proc":
        return "/proc/self/simcity-out"
    if kind == "long_name":
        return base / ("x" * 300)
    if kind == "fifo":
        os.mkfifo(base / "fifo")
        return base / "fifo"
    if kind == "device":
        return "/dev/null"
    if kind == "dangling_link":
        (base / "dangling").symlink_to(base / "gone" / "x")
        return base / "dangling"
    if kind == "link_to_device":
        (base / "devlink").symlink_to("/dev/null")
        return base / "devlink"
    if kind == "nul_byte":
        return str(base / "a\x00b")
    if kind == "existing_file":
        (base / "afile").write_text("keep me")
        return base / "afile"
    if kind == "existing_folder":
        (base / "adir").mkdir()
        return base / "adir"
    if kind == "inner_fifo":
        (base / "out").mkdir()
        os.mkfifo(base / "out" / inner)
        return base / "out"
    raise AssertionError(kind)


def check_refused(argv: list[str], kind: str, tmp_path: Path, inner: str = "") -> None:
    base = tmp_path / "base"
    base.mkdir()
    if kind == "read_only":
        with read_only(tmp_path / "ro") as folder:
            before = snapshot(tmp_path)
            refused([str(folder / "out") if a == "OUT" else a for a in argv])
            assert snapshot(tmp_path) == before
        return
    target = hostile_path(kind, base, inner)
    before = snapshot(tmp_path)
    null = os.stat("/dev/null")
    refused([str(target) if a == "OUT" else a for a in argv], usage=kind == "nul_byte")
    assert snapshot(tmp_path) == before  # nothing made, nothing replaced
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null") == null


@pytest.mark.parametrize("kind", [*COMMON_KINDS, "existing_file", "inner_fifo"])
@pytest.mark.parametrize(("label", "argv", "inner"), DIR_COMMANDS, ids=[c[0] for c in DIR_COMMANDS])
def test_a_hostile_out_folder_is_refused_before_work(
    label: str, argv: list[str], inner: str, kind: str, tmp_path: Path
) -> None:
    check_refused(argv, kind, tmp_path, inner)


@pytest.mark.parametrize("kind", [*COMMON_KINDS, "existing_folder"])
@pytest.mark.parametrize(("label", "argv"), FILE_COMMANDS, ids=[c[0] for c in FILE_COMMANDS])
def test_a_hostile_out_file_is_refused_before_work(
    label: str, argv: list[str], kind: str, tmp_path: Path
) -> None:
    check_refused(argv, kind, tmp_path)


# --- write_atomic itself -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device_link", "folder", "socket"])
def test_write_atomic_never_replaces_a_special_file(kind: str, tmp_path: Path) -> None:
    target = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device_link":
        target.symlink_to("/dev/null")
    elif kind == "folder":
        target.mkdir()
    else:
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(target))
        sock.close()
    before = snapshot(tmp_path)
    with pytest.raises(SimcityError, match="will not be replaced"):
        write_atomic(target, "x")
    assert snapshot(tmp_path) == before


def test_a_fifo_that_appears_during_the_write_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lstat right before the rename: a FIFO made while the data was written stays."""
    target = tmp_path / "map.html"
    real_fsync = os.fsync

    def fsync_then_fifo(fd: int) -> None:
        real_fsync(fd)
        if not target.exists():
            os.mkfifo(target)

    monkeypatch.setattr(files.os, "fsync", fsync_then_fifo)
    with pytest.raises(SimcityError, match="FIFO: it will not be replaced"):
        write_atomic(target, "page")
    monkeypatch.undo()
    assert stat.S_ISFIFO(target.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["map.html"]  # no temporary file left


def test_a_full_disk_is_one_error_and_the_old_file_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "eval.json"
    target.write_text("old")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", no_space)
    with pytest.raises(SimcityError, match="no space left on device"):
        write_atomic_bytes(target, b"new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]


def test_a_regular_file_and_a_link_to_one_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    write_atomic(tmp_path / "link.csv", "new")  # the link is replaced, never followed into
    assert (tmp_path / "link.csv").read_text() == "new"
    assert (tmp_path / "real.csv").read_text() == "old"
    assert not (tmp_path / "link.csv").is_symlink()
