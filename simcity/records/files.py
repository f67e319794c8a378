"""Files on disk: atomic writes (temporary file in the same folder, then rename), CSV rows.

`write_atomic` never replaces anything but a regular file (a device, FIFO, socket or folder
at the target is refused, checked again with ``lstat`` right before the rename), and every
`OSError` of a write (a full disk, a read-only folder) is one `SimcityError` naming the
file; the target is then left as it was.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from simcity.errors import SimcityError
from simcity.safe_io import decode_utf8, file_kind, read_bytes

WRITE_EXPECTED = "a path where a regular file can be written"


def write_atomic(path: Path, text: str) -> None:
    """Write text to ``path`` through a temporary file in the same folder, then rename."""
    write_atomic_bytes(path, text.encode("utf-8"))


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` through a temporary file in the same folder, then rename.

    Refuses (`SimcityError`) a target that exists and is not a regular file, or a link to
    one that is not; a failed write leaves the target untouched and no temporary file.
    """
    path = Path(path)
    check_replaceable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
    except OSError as err:
        raise write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # as open() would have made it, not mkstemp's 0600
        check_replaceable(path)  # again: something may have appeared there meanwhile
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, err) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_path_text(path: str | Path, *, field: str | None = None) -> Path:
    """``path`` as a `Path`, unless it holds a NUL byte (no system call takes one)."""
    if "\x00" in str(path):
        raise SimcityError(
            "holds a NUL byte", file=repr(str(path))[1:-1][:200], field=field, expected="a path"
        )
    return Path(path)


def check_replaceable(path: Path) -> None:
    """`SimcityError` unless ``path`` is absent, a regular file, or a link to a regular file."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as err:
        raise write_error(path, err) from None
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        try:
            mode = path.stat().st_mode
        except OSError:
            raise SimcityError("is a broken link", file=path, expected=WRITE_EXPECTED) from None
    if not stat.S_ISREG(mode):
        raise SimcityError(
            f"is {file_kind(mode)}: it will not be replaced", file=path, expected=WRITE_EXPECTED
        )


def write_error(path: Path, err: OSError) -> SimcityError:
    """One line for an `OSError` of a write: the file and the system's reason."""
    reason = (err.strerror or type(err).__name__).lower()
    return SimcityError(f"cannot write ({reason})", file=path, expected=WRITE_EXPECTED)


def umask() -> int:
    """The process's umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_csv_rows(path: Path, columns: Sequence[str], expected: str) -> list[dict[str, str]]:
    """The rows of a CSV file that must exist and have ``columns``; else a `SimcityError`."""
    if not path.exists() and not path.is_symlink():
        raise SimcityError("missing file", file=path, expected=expected)
    return csv_rows(read_bytes(path, expected=expected), path, columns, expected)


def csv_rows(
    data: bytes, path: Path, columns: Sequence[str], expected: str
) -> list[dict[str, str]]:
    """The rows of CSV ``data`` (the bytes of ``path``), which must have ``columns``."""
    text = decode_utf8(data, file=path, expected=expected)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        header = reader.fieldnames or []
    except csv.Error as err:
        raise SimcityError(f"is not valid CSV ({err})", file=path, expected=expected) from None
    for column in columns:
        if column not in header:
            raise SimcityError("missing column", file=path, field=column, expected=expected)
    for number, row in enumerate(rows, start=2):
        if None in row or any(row[c] is None for c in columns):
            raise SimcityError(
                "has a row with a different number of cells than the header",
                file=path,
                field=f"line {number}",
                expected=expected,
            )
    return rows
