"""What every command shares: the error console, one-line user errors, progress bars."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from simcity.errors import SimcityError
from simcity.safe_io import check_output_dir, check_output_file

err_console = Console(stderr=True)

DEFAULT_SCENARIO = "downtown"
DEFAULT_POLICY = "risk"
ScenarioArgument = Annotated[
    str, typer.Argument(metavar="SCENARIO", help="Bundled scenario name or TOML file.")
]

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
            message = escape(str(err))  # "[ray]" or "[[x]]" in a message is text, not markup
            err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def check_out_dir(folder: Path, files: tuple[str, ...] = ()) -> Path:
    """``folder`` (``--out``) if it is, or can be made, a writable folder whose ``files``
    can be written as regular files; else a `SimcityError`, before any work starts."""
    from simcity.records.files import check_path_text

    check_path_text(folder, field="--out")
    check_output_dir(folder, expected="a writable folder (--out)")
    for name in files:
        check_output_file(folder / name, expected="a regular file (--out)")
    return folder


def progress_bar(quiet: bool, field: str | None = None) -> Progress:
    """A progress bar on stderr (off when quiet or not a terminal), with one live field."""
    extra = [TextColumn(f"{{task.fields[{field}]}}")] if field else []
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet or not sys.stderr.isatty(),
        transient=True,
    )


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
