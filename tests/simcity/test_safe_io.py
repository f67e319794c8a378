"""The guarded read and output-path checks every input and output surface goes through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from simcity.errors import SimcityError
from simcity.safe_io import (
    check_output_dir,
    check_output_file,
    excerpt,
    read_bytes,
    read_text,
)


def test_reads_a_regular_utf8_file_and_drops_a_bom(tmp_path: Path) -> None:
    f = tmp_path / "a.toml"
    f.write_bytes(b"\xef\xbb\xbfx = 1\n")
    assert read_text(f, expected="TOML") == "x = 1\n"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("é".encode("latin-1"), "not UTF-8"),
        ("x = 1".encode("utf-16"), "UTF-16"),
        (b"x\x00y", "NUL"),
    ],
)
def test_refuses_text_that_is_not_utf8(tmp_path: Path, data: bytes, words: str) -> None:
    f = tmp_path / "a.toml"
    f.write_bytes(data)
    with pytest.raises(SimcityError, match=words) as e:
        read_text(f, expected="TOML")
    assert e.value.file == str(f)


def test_refuses_folders_fifos_devices_and_big_files(tmp_path: Path) -> None:
    with pytest.raises(SimcityError, match="folder"):
        read_bytes(tmp_path, expected="x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SimcityError, match="FIFO"):
        read_bytes(fifo, expected="x")  # returns at once: never opened for a blocking read
    with pytest.raises(SimcityError, match="device"):
        read_bytes("/dev/zero", expected="x")
    with pytest.raises(SimcityError, match=r"regular|pseudo"):
        read_bytes("/proc/self/environ", expected="x")
    big = tmp_path / "big"
    big.write_bytes(b"a" * 101)
    with pytest.raises(SimcityError, match="101 bytes"):
        read_bytes(big, expected="x", max_bytes=100)
    with pytest.raises(SimcityError, match="no such file"):
        read_bytes(tmp_path / "missing", expected="x")
    link = tmp_path / "zero"
    link.symlink_to("/dev/zero")
    with pytest.raises(SimcityError, match="device"):
        read_bytes(link, expected="x")


def test_output_paths_refuse_what_they_would_destroy(tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "new" / "deeper" / "x.html") == tmp_path / "new" / (
        "deeper/x.html"
    )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SimcityError, match="FIFO"):
        check_output_file(fifo)
    with pytest.raises(SimcityError, match=r"device|pseudo"):
        check_output_file("/dev/null")
    with pytest.raises(SimcityError, match="pseudo"):
        check_output_dir("/proc/simcity")
    regular = tmp_path / "file"
    regular.write_text("x")
    with pytest.raises(SimcityError, match="not a folder"):
        check_output_file(regular / "x.html")
    with pytest.raises(SimcityError, match="not a folder"):
        check_output_dir(regular)
    with pytest.raises(SimcityError, match="longer than"):
        check_output_dir(tmp_path / ("x" * 300))
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(SimcityError, match="not writable"):
            check_output_dir(ro / "run")


def test_excerpt_is_short_and_printable() -> None:
    assert excerpt("a\nb") == repr("a\\nb")
    assert len(excerpt("x" * 1000, limit=10)) < 20
