"""Building blocks shared by the scenario sections: frozen models, number types, paths.

Every number in a scenario is typed strictly (no text taken for a number, no ``true`` for
1, no ``3.0`` for a count) and bounded by a physical range, so nothing physically
meaningless (a denormal step, 1e308 people) reaches the world. Each section states each
range's reason beside its field; `Real` and `Count` are the unbounded bases.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Annotated

from annotated_types import Interval
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

from simcity.errors import SimcityError
from simcity.safe_io import check_input_file, excerpt

Real = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A finite number (an integer is taken as a float; text, booleans, NaN and inf are not)."""
Count = Annotated[int, Field(strict=True)]
"""A whole number (``3.0``, ``true`` and ``"3"`` are not)."""
Flag = Annotated[bool, Field(strict=True)]
"""``true`` or ``false`` (not 1, 0 or text)."""
NonNegative = Annotated[Real, Interval(ge=0)]
Positive = Annotated[Real, Interval(gt=0)]
Share = Annotated[Real, Interval(ge=0, le=1)]
Hour = Annotated[Real, Interval(ge=0, lt=24)]
"""An hour of the local day."""
Lon = Annotated[Real, Interval(ge=-180, le=180)]
Lat = Annotated[Real, Interval(ge=-90, le=90)]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
ONE_LINE = r"^[^\x00-\x1f\x7f]*$"
"""Text without control characters (no newline, no terminal escape)."""
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=ONE_LINE)]
"""A label shown in tables and maps (an event, an incident, a tier): one line."""
Text = Annotated[str, Field(max_length=10_000)]
"""A title or description (a scenario file is at most 1 MiB anyway)."""
MAX_PATH_CHARS = 4096
"""PATH_MAX on Linux: no longer path names a file."""
MAX_LIST = 10_000
"""Most entries of a list in a scenario (events, scheduled incidents, node names)."""


class Frozen(BaseModel):
    """A frozen scenario section; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: object, info: ValidationInfo, *, folder: bool) -> Path:
    """A path from a scenario file, relative to that file's folder; it must exist and be a
    folder (``folder``) or a regular file (never a FIFO, device or ``/proc`` pseudo-file)."""
    if isinstance(value, Path):  # a validated scenario copied (overrides, model_dump)
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("expected a path (text)")
    if not value.strip() or len(value) > MAX_PATH_CHARS or "\x00" in value:
        raise ValueError(f"{excerpt(value)} is not a path")
    base = (info.context or {}).get("base_dir", Path.cwd())
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path(base) / path
    if folder:
        try:
            is_dir = stat.S_ISDIR(path.stat().st_mode)
        except (OSError, ValueError):
            is_dir = False
        if not is_dir:
            raise ValueError(f"no such folder: {excerpt(path, 200)}")
        return path
    try:
        return check_input_file(path, expected="a regular file")
    except SimcityError as err:
        raise ValueError(f"{excerpt(path, 200)}: {err.message}") from None


class FieldError(ValueError):
    """A cross-field check's failure that belongs to one field below the model checked
    (``field``, dotted), so the loader's message names that field, not the section."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
