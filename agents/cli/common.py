"""What every command shares: the error console, one-line user errors, progress bars."""

from __future__ import annotations

import sys
import threading
import time
import warnings
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from simcity.errors import SimcityError
from simcity.safe_io import check_output_dir, check_output_file

err_console = Console(stderr=True, emoji=False, highlight=False)
"""Errors and warnings: names print verbatim (no ``:x:`` emoji, no highlighting; markup
in the text is escaped by `print_error`)."""

DEFAULT_SCENARIO = "downtown"
DEFAULT_POLICY = "risk"
ScenarioArgument = Annotated[
    str, typer.Argument(metavar="SCENARIO", help="Bundled scenario name or TOML file.")
]


class SplitChoice(StrEnum):
    """The seed splits a user evaluates on (`agents.training.seeds`)."""

    validation = "validation"
    test = "test"


SplitOption = Annotated[
    SplitChoice,
    typer.Option(
        "--split",
        help="Days to play: 'validation' (2**33 + k) for every choice you make from the "
        "table (a checkpoint, a setting, a gain); 'test' (2**32 + k) for the final reported "
        "comparison, after the choices. Both are disjoint from training's days ([0, 2**32)).",
    ),
]

QuietOption = Annotated[
    bool,
    typer.Option("--quiet", metavar="", help="No progress bar (a flag: it takes no value)."),
]
"""``--quiet``, shown as the flag it is (no ``<bool>``, which reads as if it took a value)."""


def policy_help() -> str:
    """``--policy``'s help, its baselines from the registry (`agents.policies.baselines`)."""
    from agents.policies.baselines import BASELINES

    plain = ", ".join(name for name in BASELINES if name != "clairvoyant")
    reference = "; clairvoyant: the reference that sees the true incidents" * (
        "clairvoyant" in BASELINES
    )
    return (
        f"Baseline ({plain}{reference}), a trained checkpoint file (DIR/checkpoint.pt), or "
        "pretrained (the shipped generalist, any city); a trained policy's FLOPs per "
        "decision are billed."
    )


def parse_hour(text: str, field: str) -> int:
    """A local hour of the day from ``"18"`` or ``"18:00"`` (``"18:30"``: the hour holding
    it, 18), as `--at` and the map's ``#18:00`` write it; `SimcityError` otherwise.

    >>> parse_hour("18:00", "--hour"), parse_hour("7", "--hour"), parse_hour("06:45", "--hour")
    (18, 7, 6)
    """
    hour_text, sep, minute_text = text.strip().partition(":")
    try:
        hour = int(hour_text)
        minute = int(minute_text) if sep else 0
    except ValueError:
        hour = minute = -1
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and (not sep or len(minute_text) == 2)):
        raise SimcityError(
            f"is {text!r}", field=field, expected="an hour 0-23 or a time HH:MM, e.g. 18 or 18:00"
        )
    return hour


F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Print a `SimcityError` in one line and exit with status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except SimcityError as err:
            print_error("error:", str(err))
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def require_torch(what: str) -> None:
    """A one-line `SimcityError`, not an import traceback, where ``what`` needs torch and
    torch is not installed (`make run` installs no torch)."""
    try:
        import torch  # noqa: F401 (the command imports it next anyway)
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        raise SimcityError(
            f"{what} needs torch, which is not installed: install the train extra "
            "(pip install -e '.[train]')"
        ) from None


def check_out_dir(folder: Path, files: tuple[str, ...] = ()) -> Path:
    """``folder`` (``--out``) if it is, or can be made, a writable folder whose ``files``
    can be written as regular files; else a `SimcityError`, before any work starts."""
    from simcity.records.files import check_path_text

    check_path_text(folder, field="--out")
    check_output_dir(folder, expected="a writable folder (--out)")
    for name in files:
        check_output_file(folder / name, expected="a regular file (--out)")
    return folder


LINE_EVERY_S = 30.0
"""Off a terminal, the longest a task goes without a progress line."""


def progress_bar(quiet: bool, field: str | None = None) -> Progress:
    """Progress on stderr with one live field: a rich bar in a terminal; otherwise
    (output to a file or pipe) one line per stage, per 10% and at least every
    `LINE_EVERY_S` seconds (`LineProgress`); nothing when quiet."""
    extra = [TextColumn(f"{{task.fields[{field}]}}")] if field else []
    terminal = sys.stderr.isatty()
    return LineProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet or not terminal,
        transient=True,
        lines=not quiet and not terminal,
        field=field,
    )


class LineProgress(Progress):
    """A rich `Progress` that, with ``lines``, prints plain progress lines instead of a bar:

    ``tiny / teacher days: 3/24 (12%), 0:00:41 elapsed``

    one when a task starts or its description (the stage) changes, one per 10% done, and
    one every `LINE_EVERY_S` seconds while a task runs, from a timer thread, so a long
    step between updates still shows the run is alive.
    """

    def __init__(self, *columns: Any, lines: bool, field: str | None, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self.lines, self.field = lines, field
        self._said: dict[TaskID, tuple[str, int, float]] = {}  # description, tenth, when
        self._say_lock = threading.Lock()
        self._stopped = threading.Event()
        self._timer: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        if self.lines and self._timer is None:
            self._timer = threading.Thread(target=self._beat, daemon=True)
            self._timer.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.join()
            self._timer = None
        super().stop()

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self.say(task_id)
        return task_id

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self.say(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self.say(task_id)

    def reset(self, task_id: TaskID, **kwargs: Any) -> None:
        super().reset(task_id, **kwargs)
        self._said.pop(task_id, None)
        self.say(task_id)

    def say(self, task_id: TaskID) -> None:
        """Print ``task_id``'s line if its stage changed, a tenth more is done, or
        `LINE_EVERY_S` passed since its last line."""
        if not self.lines:
            return
        with self._say_lock:
            task = self._tasks[task_id]
            now = time.monotonic()
            tenth = int(10 * task.completed / task.total) if task.total else -1
            said = self._said.get(task_id)
            if (
                said is not None
                and said[0] == task.description
                and tenth <= said[1]
                and now - said[2] < LINE_EVERY_S
            ):
                return
            self._said[task_id] = (task.description, tenth, now)
            self.console.print(
                progress_line(task.description, task.completed, task.total, task.elapsed)
                + (f"  {task.fields.get(self.field, '')}".rstrip() if self.field else ""),
                markup=False,
                highlight=False,
                emoji=False,
                soft_wrap=True,
            )

    def _beat(self) -> None:
        while not self._stopped.wait(min(1.0, LINE_EVERY_S / 4)):
            for task in self.tasks:
                if not task.finished:
                    self.say(task.id)


def progress_line(stage: str, done: float, total: float | None, elapsed_s: float | None) -> str:
    """One progress line of `LineProgress`.

    >>> progress_line("tiny / teacher days", 3, 24, 41.2)
    'tiny / teacher days: 3/24 (12%), 0:00:41 elapsed'
    >>> progress_line("compress / prune", 0, None, 75)
    'compress / prune: 0:01:15 elapsed'
    """
    clock = time.strftime("%H:%M:%S", time.gmtime(int(elapsed_s or 0))).removeprefix("0")
    if not total:
        return f"{one_line(stage)}: {clock} elapsed"
    return f"{one_line(stage)}: {done:g}/{total:g} ({100 * done / total:.0f}%), {clock} elapsed"


def print_error(label: str, message: str, *, style: str = "bold red") -> None:
    """``label message`` on stderr in one line, the message verbatim: markup (``[bold]``)
    escaped, no emoji (``:x:``) or highlighting, control characters shown as escapes."""
    text = escape(one_line(message))
    err_console.print(
        f"[{style}]{escape(label)}[/] {text}", soft_wrap=True, emoji=False, highlight=False
    )


def one_line(text: str) -> str:
    r"""``text`` with control and other unprintable characters escaped (``\n``, ``\x1b``).

    >>> one_line("a\nb\x1b[31m")
    'a\\nb\\x1b[31m'
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    print_error("warning:", str(message), style="yellow")
