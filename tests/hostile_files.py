"""Helpers of the hostile-input corpus: valid files to break, special files, a time limit."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from simcity.errors import SimcityError

FUZZ_EXAMPLES = int(os.environ.get("SIMCITY_FUZZ_EXAMPLES", "60"))
"""Hypothesis examples per fuzz test: 60 keeps the corpus fast; raise it to hunt."""

# --- a valid 4-node, 2-zone TNTP folder, in parts --------------------------------------

NET_HEAD = """<NUMBER OF ZONES> {zones}
<NUMBER OF NODES> {nodes}
<FIRST THRU NODE> 1
<NUMBER OF LINKS> {num_links}
<END OF METADATA>

~\tinit_node\tterm_node\tcapacity\tlength\tfree_flow_time\tb\tpower\t;
"""
LINKS = [
    "1\t3\t1000\t1.5\t2\t0.15\t4\t;",
    "3\t2\t1000\t1.5\t2\t0.15\t4\t;",
    "2\t4\t800\t1\t1\t0.15\t4\t;",
    "4\t1\t800\t1\t1\t0.15\t4\t;",
    "3\t4\t500\t2\t3\t0.15\t4\t;",
    "4\t3\t500\t2\t3\t0.15\t4\t;",
    "1\t4\t500\t2\t3\t0.15\t4\t;",
    "2\t3\t500\t2\t3\t0.15\t4\t;",
]
TRIPS = """<NUMBER OF ZONES> 2
<TOTAL OD FLOW> 400.0
<END OF METADATA>

Origin  1
    1 :      0.0;     2 :    300.0;

Origin  2
    1 :    100.0;     2 :      0.0;
"""
NODES = "Node\tX\tY\t;\n1\t0\t0\t;\n2\t1000\t0\t;\n3\t500\t500\t;\n4\t500\t-500\t;\n"


def net_text(
    links: list[str] | None = None,
    *,
    nodes: object = 4,
    zones: object = 2,
    num_links: object = None,
) -> str:
    rows = LINKS if links is None else links
    count = len(rows) if num_links is None else num_links
    return NET_HEAD.format(zones=zones, nodes=nodes, num_links=count) + "\n".join(rows) + "\n"


def tntp_folder(
    folder: Path,
    *,
    net: str | None = None,
    trips: str | None = TRIPS,
    nodes: str | None = NODES,
    geojson: str | None = None,
) -> Path:
    """A valid TNTP folder (``Tiny_*``) with any part replaced, or left out where None."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {
        "Tiny_net.tntp": net_text() if net is None else net,
        "Tiny_trips.tntp": trips,
        "Tiny_node.tntp": nodes,
        "Tiny.geojson": geojson,
    }
    for name, text in parts.items():
        if text is not None:
            (folder / name).write_text(text, encoding="utf-8")
    return folder


# --- special files -----------------------------------------------------------------------


def make_fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


def link_to_dev_zero(path: Path) -> Path:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")
    return path


def make_folder(path: Path) -> Path:
    path.unlink(missing_ok=True)
    path.mkdir()
    return path


SPECIAL: dict[str, Callable[[Path], Path]] = {
    "fifo": make_fifo,
    "dev-zero link": link_to_dev_zero,
    "folder": make_folder,
}


@contextlib.contextmanager
def finishes_within(seconds: float) -> Iterator[None]:
    """Fail (rather than hang the suite) if the block runs longer than ``seconds``."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refused(call: Callable[[], Any], *words: str) -> SimcityError:
    """The `SimcityError` ``call`` raises (within 10 s), with ``words`` in its text."""
    with finishes_within(10.0):
        try:
            call()
        except SimcityError as error:
            text = str(error)
            assert error.file, f"no file named: {text}"
            for word in words:
                assert word in text, f"{word!r} not in {text!r}"
            return error
    raise AssertionError(f"accepted; expected a SimcityError with {words}")


def error_or_value(call: Callable[[], Any]) -> Any:
    """``call()``'s value, or None where it raised `SimcityError` naming a file; any other
    exception (or a hang) fails the test."""
    with finishes_within(10.0):
        try:
            return call()
        except SimcityError as error:
            assert error.file, f"no file named: {error}"
            return None
