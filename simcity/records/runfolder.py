"""Run folders replaced whole or not at all, with a manifest that readers check.

`write_run_folder` writes every file of a run into a new folder beside the target (same
parent, so the same file system), adds ``run.json`` (run id, simcity version, each file's
size and SHA-256), then swaps it in: one atomic exchange of the two folders where the
system has one (Linux ``renameat2(RENAME_EXCHANGE)``), else the old folder renamed away,
the new one renamed in, the old one deleted. A kill at any moment leaves the old run or
the new one at the path (with the fallback, for an instant, neither: the old run then
waits beside it, named ``.NAME.old-*``, and the next write puts it back first; a killed
write leaves only a hidden ``.NAME.new-*`` folder). Files
of an old run (its map.html, report.html) never survive into the new one.

An existing folder is replaced only when it is a run folder (holds ``run.json`` and only
regular files, or only the names a run and its default map and report write); anything
else is refused, so ``--out ~/Documents`` never deletes a user's files.

One writer at a time: `write_run_folder` holds `run_folder_lock` (an exclusive, non-blocking
``flock`` on ``.NAME.lock`` beside the folder) from its checks to the swap; a second process
writing the same folder meanwhile is refused with a `SimcityError` (exit 2 from the CLI), and
the lock file is gone when the writer is done (a killed writer's stale one is harmless: the
kernel drops its lock with the process).

`read_run_file` reads one file of a run folder through the guarded reads of
`simcity.safe_io`; `verify_run_file` checks the bytes read against the manifest.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from simcity.errors import SimcityError
from simcity.records.files import umask, write_atomic_bytes, write_error
from simcity.safe_io import MIB, check_output_dir, decode_utf8, excerpt, read_bytes

MANIFEST = "run.json"
FORMAT = "simcity run folder"
FORMAT_VERSION = 1
EXPECTED = "a run folder written by `simcity run --out`"
RUN_FILES = frozenset(
    {
        "steps.csv",
        "episodes.json",
        "summary.json",
        "emissions.csv",
        "city.json",
        "day.npz",
        "incidents.csv",
    }
)
"""The files `simcity run --out` writes (besides the manifest)."""
LATER_FILES = frozenset({"map.html", "report.html"})
"""What `simcity map` and `simcity report` add by default: part of the run they were drawn of."""
MAX_FILE_BYTES = 1024 * MIB
_MANIFEST_MAX_BYTES = 1 * MIB


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version() -> str:
    try:
        return version("simcity")
    except PackageNotFoundError:
        return "unknown"


def manifest(files: Mapping[str, bytes]) -> dict[str, Any]:
    """The ``run.json`` document of a run made of ``files`` (name to bytes)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "run_id": uuid.uuid4().hex,
        "simcity_version": _version(),
        "files": {
            name: {"bytes": len(data), "sha256": _sha256(data)}
            for name, data in sorted(files.items())
        },
    }


def write_run_folder(out_dir: Path, files: Mapping[str, bytes]) -> Path:
    """Make ``out_dir`` hold exactly ``files`` and their manifest, replacing any earlier run
    whole (module doc). `SimcityError` (the earlier run intact) when it cannot."""
    out_dir = Path(out_dir)
    unknown = set(files) - RUN_FILES
    if unknown:
        raise ValueError(f"not run files: {sorted(unknown)}")  # a programming error
    check_output_dir(out_dir, expected="a folder for the run (a new one, or an earlier run)")
    parent = out_dir.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(out_dir, err) from None
    with run_folder_lock(out_dir):
        check_replaceable_run(out_dir)
        _write_locked(out_dir, files)
    return out_dir


def holds_run(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds files (an earlier run's, `check_replaceable_run` says) that a
    write would replace."""
    try:
        return Path(out_dir).is_dir() and any(Path(out_dir).iterdir())
    except OSError:
        return False


def lock_path(out_dir: Path) -> Path:
    """The lock file of run folder ``out_dir``: ``.NAME.lock`` in its parent."""
    return out_dir.absolute().parent / f".{out_dir.name[:200]}.lock"


@contextlib.contextmanager
def run_folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir``'s writer lock inside (module doc); a `SimcityError` naming the folder
    at once when another process (or another open of it here) holds it."""
    path = lock_path(Path(out_dir))
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise write_error(out_dir, err) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SimcityError(
                "another simcity process is writing this run folder",
                file=out_dir,
                field="--out",
                expected="one writer at a time: wait for it to finish, or choose another --out",
            ) from None
        except OSError as err:
            os.close(fd)
            raise write_error(out_dir, err) from None
        try:  # the holder before us may have removed the file we locked: then lock anew
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still locked: a writer waiting on this file will retry
        os.close(fd)


def _write_locked(out_dir: Path, files: Mapping[str, bytes]) -> None:
    parent = out_dir.absolute().parent
    try:
        _recover(out_dir)
        new = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name[:200]}.new-"))
    except OSError as err:
        raise write_error(out_dir, err) from None
    try:
        os.chmod(new, 0o777 & ~umask())
        for name, data in files.items():
            write_atomic_bytes(new / name, data)
        doc = json.dumps(manifest(files), indent=2) + "\n"
        write_atomic_bytes(new / MANIFEST, doc.encode("utf-8"))
        _fsync_dir(new)
        _swap_in(new, out_dir)
    except (OSError, SimcityError) as err:
        shutil.rmtree(new, ignore_errors=True)
        reason = err.message if isinstance(err, SimcityError) else write_error(out_dir, err).message
        kept = "the earlier run there is left as it was" if out_dir.exists() else "nothing written"
        raise SimcityError(
            f"{reason}: {kept}", file=out_dir, expected="a folder with room for the run"
        ) from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise


def check_replaceable_run(out_dir: Path) -> None:
    """`SimcityError` when ``out_dir`` exists and is not a run folder (nor empty)."""
    if not out_dir.is_dir():
        return
    try:
        entries = list(out_dir.iterdir())
        special = [p.name for p in entries if p.is_symlink() or not p.is_file()]
    except OSError as err:
        raise write_error(out_dir, err) from None
    if special:
        raise SimcityError(
            f"holds {excerpt(special[0])}, which is not a regular file: it will not be replaced",
            file=out_dir,
            field="--out",
            expected="a new folder, an empty one, or an earlier run folder",
        )
    names = {p.name for p in entries}
    if not names or MANIFEST in names:
        return
    known = RUN_FILES | LATER_FILES
    others = sorted(names - known)
    if others:
        raise SimcityError(
            f"holds files that are not a run's (e.g. {excerpt(others[0])}): it will not be "
            "replaced",
            file=out_dir,
            field="--out",
            expected="a new folder, an empty one, or an earlier run folder",
        )


def _swap_in(new: Path, out_dir: Path) -> None:
    """Put folder ``new`` at ``out_dir``: a rename, or an exchange and the old one deleted."""
    if not out_dir.exists() and not out_dir.is_symlink():
        os.rename(new, out_dir)
        _fsync_dir(out_dir.absolute().parent)
        return
    if _exchange(new, out_dir):
        _fsync_dir(out_dir.absolute().parent)
        shutil.rmtree(new, ignore_errors=True)  # now the old run
        return
    old = out_dir.absolute().parent / f".{out_dir.name[:200]}.old-{uuid.uuid4().hex[:12]}"
    os.rename(out_dir, old)
    try:
        os.rename(new, out_dir)
    except OSError:
        os.rename(old, out_dir)
        raise
    _fsync_dir(out_dir.absolute().parent)
    shutil.rmtree(old, ignore_errors=True)


def _recover(out_dir: Path) -> None:
    """Put back an old run that a killed fallback swap left beside a missing ``out_dir``."""
    if out_dir.exists() or out_dir.is_symlink():
        return
    parent = out_dir.absolute().parent
    prefix = f".{out_dir.name[:200]}.old-"
    olds = sorted(p for p in parent.glob(f"{glob_escape(prefix)}*") if p.is_dir())
    if olds:
        os.rename(olds[-1], out_dir)


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fail(message: str, file: Path, field: str | None = None) -> SimcityError:
    """A `SimcityError` about a run folder's file."""
    return SimcityError(message, file=file, field=field, expected=EXPECTED)


def check_run_dir(run_dir: Path) -> None:
    """`SimcityError` unless ``run_dir`` is a folder."""
    if not Path(run_dir).is_dir():
        parent = Path(run_dir).absolute().parent
        prefix = f".{Path(run_dir).name[:200]}.old-"
        with contextlib.suppress(OSError):
            if any(p.name.startswith(prefix) for p in parent.iterdir()):
                raise fail(
                    "no such folder (a replace was interrupted: run it again, or rename "
                    f"the {prefix}* folder beside it back)",
                    run_dir,
                )
        raise fail("no such folder", run_dir)


def read_run_file(run_dir: Path, name: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``run_dir / name`` through `simcity.safe_io.read_bytes`."""
    check_run_dir(run_dir)
    path = Path(run_dir) / name
    if not path.exists() and not path.is_symlink():
        raise fail("missing file", path)
    return read_bytes(path, expected=EXPECTED, max_bytes=max_bytes)


def read_manifest(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The files ``run.json`` lists (name to bytes and sha256), validated."""
    path = Path(run_dir) / MANIFEST
    if not path.exists() and not path.is_symlink():
        raise fail(
            "missing file: not a whole run folder (one written before run folders had a "
            "manifest, or by an interrupted run): run `simcity run --out` again",
            path,
        )
    data = read_bytes(path, expected=EXPECTED, max_bytes=_MANIFEST_MAX_BYTES)
    try:
        doc = json.loads(decode_utf8(data, file=path, expected=EXPECTED))
    except (json.JSONDecodeError, RecursionError):
        raise fail("not valid JSON", path) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise fail(f"is not a manifest (format is not {FORMAT!r})", path, "format")
    if doc.get("format_version") != FORMAT_VERSION:
        raise fail(f"is not format_version {FORMAT_VERSION}", path, "format_version")
    files = doc.get("files")
    if not isinstance(files, dict):
        raise fail("is not a table of files", path, "files")
    for name, entry in files.items():
        ok = (
            name in RUN_FILES
            and isinstance(entry, dict)
            and type(entry.get("bytes")) is int
            and 0 <= entry["bytes"] <= MAX_FILE_BYTES
            and isinstance(entry.get("sha256"), str)
            and len(entry["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in entry["sha256"])
        )
        if not ok:
            raise fail("is not a run file with its bytes and sha256", path, f"files.{name}"[:80])
    return files


def verify_run_file(run_dir: Path, name: str, data: bytes, *, whole: bool = False) -> None:
    """`SimcityError` unless ``data`` is the ``name`` that the run's manifest lists; with
    ``whole``, also unless every other file it lists is there as the run wrote it (no
    mixture of two runs: `read_day_log` checks that, after its own files parsed)."""
    listed = read_manifest(run_dir)
    if name not in listed:
        raise fail(f"is not listed in {MANIFEST}", Path(run_dir) / name)
    for other in sorted(listed, key=lambda n: n != name) if whole else [name]:
        content = data if other == name else read_run_file(run_dir, other)
        entry = listed[other]
        if entry["bytes"] != len(content) or entry["sha256"] != _sha256(content):
            raise fail(
                f"is not the file the run wrote (its size or SHA-256 differs from {MANIFEST}: "
                "changed, truncated, or from another run)",
                Path(run_dir) / other,
            )
