"""The one guarded path for reading user files and choosing output paths.

Every input surface (scenario files and their ``base`` chains, carbon traces, TNTP and
GraphML networks, OSM extracts, zones files, checkpoints, run folders) reads through
`read_bytes` / `read_text`: the path must name a regular file (not a folder, FIFO, device
or ``/proc`` pseudo-file) of at most ``max_bytes``, opened without blocking, and text must
be UTF-8. Errors name the file and say what was expected; they never quote the file.
`excerpt` makes the short, printable quote of a value that a message may carry.

Outputs go only to paths that are, or will be, regular files in a writable folder:
`check_output_file` and `check_output_dir` refuse anything else before work starts, and
never let an existing non-regular file be replaced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from simcity.errors import SimcityError

KIB = 1024
MIB = 1024 * KIB
#: Default ceilings: a scenario file is small; data files (networks, traces) may be large.
SCENARIO_MAX_BYTES = 1 * MIB
DATA_MAX_BYTES = 512 * MIB
#: Paths that never take output (pseudo file systems and devices).
FORBIDDEN_OUTPUT_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
NAME_MAX = 255


def file_kind(mode: int) -> str:
    """What a non-regular file is, for a message: a folder, a FIFO, a device, a socket."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _is_pseudo(path: Path) -> bool:
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return False
    return any(resolved == root or root in resolved.parents for root in FORBIDDEN_OUTPUT_ROOTS)


def check_input_file(path: str | Path, *, expected: str, max_bytes: int = DATA_MAX_BYTES) -> Path:
    """``path`` if it names a regular file of at most ``max_bytes`` (not a folder, FIFO,
    device or pseudo-file), else a `SimcityError`; nothing is opened."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SimcityError("no such file", file=path, expected=expected) from None
    except (OSError, ValueError) as e:
        raise SimcityError(f"cannot read ({_reason(e)})", file=path, expected=expected) from None
    if not stat.S_ISREG(info.st_mode) or _is_pseudo(path):
        kind = file_kind(info.st_mode) if not stat.S_ISREG(info.st_mode) else "a pseudo-file"
        raise SimcityError(f"is {kind}, not a regular file", file=path, expected=expected)
    if info.st_size > max_bytes:
        raise SimcityError(
            f"is {info.st_size:,} bytes, more than the {max_bytes:,} allowed",
            file=path,
            expected=expected,
        )
    return path


def read_bytes(path: str | Path, *, expected: str, max_bytes: int = DATA_MAX_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``max_bytes``), else a `SimcityError`.

    ``expected`` says what the file should be (it ends every message). The file is opened
    non-blocking and checked again after opening, so a FIFO or device never hangs a read.
    """
    path = check_input_file(path, expected=expected, max_bytes=max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise SimcityError(f"cannot open ({_reason(e)})", file=path, expected=expected) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SimcityError("is not a regular file", file=path, expected=expected)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise SimcityError(f"cannot read ({_reason(e)})", file=path, expected=expected) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise SimcityError(
            f"is more than the {max_bytes:,} bytes allowed", file=path, expected=expected
        )
    return data


def read_text(path: str | Path, *, expected: str, max_bytes: int = DATA_MAX_BYTES) -> str:
    """The UTF-8 text of ``path`` (a leading byte-order mark dropped), else a `SimcityError`."""
    data = read_bytes(path, expected=expected, max_bytes=max_bytes)
    return decode_utf8(data, file=path, expected=expected)


def decode_utf8(data: bytes, *, file: str | Path, expected: str) -> str:
    """``data`` decoded as UTF-8 (BOM dropped); NUL bytes and other encodings are refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SimcityError("is UTF-16 text, not UTF-8", file=file, expected=expected)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SimcityError(
            f"is not UTF-8 text (bad byte at offset {e.start})", file=file, expected=expected
        ) from None
    if "\x00" in text:
        raise SimcityError("holds NUL bytes (a binary file?)", file=file, expected=expected)
    return text


def excerpt(value: object, limit: int = 40) -> str:
    """A short, printable quote of ``value`` for a message: control characters escaped."""
    text = str(value)
    cut = len(text) > limit
    text = text[:limit]
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return repr(text + ("..." if cut else ""))


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return type(e).__name__


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        try:
            if candidate.exists() or candidate.is_symlink():
                return candidate
        except OSError:
            continue
    return Path(".")


def _check_names(path: Path, expected: str) -> None:
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise SimcityError(
                f"has a name longer than {NAME_MAX} bytes", file=path, expected=expected
            )
    if _is_pseudo(path):
        raise SimcityError("is on a pseudo file system", file=path, expected=expected)


def _check_parent(path: Path, expected: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable folder."""
    base = _nearest_existing(path)
    if not base.is_dir():
        raise SimcityError(
            f"cannot be created: {base} is not a folder", file=path, expected=expected
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise SimcityError(
            f"cannot be created: {base} is not writable", file=path, expected=expected
        )


def check_output_file(path: str | Path, *, expected: str = "a writable file path") -> Path:
    """``path`` if a regular file may be written there, else a `SimcityError` (before any work).

    An existing path must be a regular file (it will be replaced); a new one needs a writable
    folder, existing or creatable.
    """
    path = Path(path)
    _check_names(path, expected)
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        _check_parent(path.parent, expected)
        return path
    except OSError as e:
        raise SimcityError(f"cannot be used ({_reason(e)})", file=path, expected=expected) from None
    if stat.S_ISLNK(info.st_mode):
        try:
            info = path.stat()
        except OSError:
            raise SimcityError("is a broken link", file=path, expected=expected) from None
    if not stat.S_ISREG(info.st_mode):
        raise SimcityError(
            f"is {file_kind(info.st_mode)}: it will not be replaced", file=path, expected=expected
        )
    if not os.access(path.parent if str(path.parent) else ".", os.W_OK | os.X_OK):
        raise SimcityError(
            f"cannot be replaced: {path.parent} is not writable", file=path, expected=expected
        )
    return path


def check_output_dir(path: str | Path, *, expected: str = "a writable folder") -> Path:
    """``path`` if it is, or can be made, a writable folder; else a `SimcityError`."""
    path = Path(path)
    _check_names(path, expected)
    if path.exists():
        if not path.is_dir():
            raise SimcityError("exists and is not a folder", file=path, expected=expected)
        if not os.access(path, os.W_OK | os.X_OK):
            raise SimcityError("is not writable", file=path, expected=expected)
        return path
    _check_parent(path, expected)
    return path
