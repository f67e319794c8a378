"""Building blocks shared by the scenario sections: frozen models, number types, paths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1)]


class Frozen(BaseModel):
    """A frozen scenario section; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: str, info: ValidationInfo, *, folder: bool) -> Path:
    """A path from a scenario file, relative to that file's folder; it must exist."""
    base = (info.context or {}).get("base_dir", Path.cwd())
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path(base) / path
    if folder and not path.is_dir():
        raise ValueError(f"no such folder: {path}")
    if not folder and not path.is_file():
        raise ValueError(f"no such file: {path}")
    return path
