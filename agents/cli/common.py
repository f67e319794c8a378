"""What every command shares: the error console, one-line user errors, progress bars."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from simcity.errors import SimcityError

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
