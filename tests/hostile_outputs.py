"""Helpers of the output-path and run-folder corpus: special paths, a read-only folder, a
CLI call that must be refused in one line, and a snapshot of a folder to compare."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from typer.testing import CliRunner, Result

from agents.cli.main import app

runner = CliRunner()


def refused(
    args: list[str], *, contains: str = "", usage: bool = False, after_work: bool = False
) -> Result:
    """Invoke the CLI; assert exit 2 with one error line, no traceback; return the result.

    ``usage``: click's own refusal of an argument (its boxed usage error) is enough;
    ``after_work``: the error may follow what the command printed while it worked."""
    result = runner.invoke(app, args)
    text = result.output
    assert result.exit_code == 2, (args, result.exit_code, text, result.exception)
    assert "Traceback" not in text, text
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = [line for line in text.splitlines() if line.strip()]
    if usage and "Invalid value" in text:
        return result
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and (after_work or lines[0] == errors[0]), text
    joined = " ".join(text.split())
    assert contains in joined, (contains, joined)
    return result


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too): its kind, and its bytes' SHA-256."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            entries[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            entries[rel] = "dir"
        else:
            entries[rel] = f"special:{path.lstat().st_mode:o}"
    return entries


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` made unwritable: chmod for a user, ``chattr +i`` for root (who ignores modes)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if done.returncode != 0 or os.access(folder, os.W_OK):
        import pytest

        pytest.skip("cannot make a folder read-only here (root without chattr)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
