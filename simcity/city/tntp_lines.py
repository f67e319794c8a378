"""The TNTP format's lines: comments, the ``<KEY> value`` metadata block, numeric rows.

Shared by the readers in `simcity.city.tntp`; every error names the file and the line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from simcity.errors import SimcityError


def one_file(root: Path, pattern: str) -> Path:
    found = sorted(root.glob(pattern))
    if len(found) != 1:
        raise SimcityError(
            f"{len(found)} files match {pattern}", file=root, expected=f"exactly one {pattern}"
        )
    return found[0]


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered lines of ``path`` without comments or blanks."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SimcityError(f"cannot read: {error.strerror}", file=path) from None
    numbered = ((n, line.split("~", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1))
    return [(n, line) for n, line in numbered if line]


def split_metadata(path: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """Metadata ``{KEY: value}`` and the numbered lines after ``<END OF METADATA>``."""
    lines = numbered_lines(path)
    meta: dict[str, str] = {}
    for index, (number, text) in enumerate(lines):
        tag = re.match(r"<([^>]+)>\s*(.*)", text)
        if tag is None:
            raise SimcityError(
                f"unexpected text {text[:30]!r} in the metadata",
                file=path,
                field=f"line {number}",
                expected="<KEY> value lines up to <END OF METADATA>",
            )
        key = tag.group(1).strip().upper()
        if key == "END OF METADATA":
            return meta, lines[index + 1 :]
        meta[key] = tag.group(2).strip()
    raise SimcityError("no <END OF METADATA> line", file=path, expected="a TNTP metadata block")


def meta_int(meta: dict[str, str], key: str, path: Path) -> int:
    if key not in meta:
        raise SimcityError("missing", file=path, field=f"<{key}>", expected="an integer")
    try:
        return int(meta[key])
    except ValueError:
        raise SimcityError(
            f"is {meta[key]!r}", file=path, field=f"<{key}>", expected="an integer"
        ) from None


def numbers(
    parts: list[str], count: int, path: Path, line: int, names: tuple[str, ...]
) -> list[float]:
    if len(parts) < count:
        raise SimcityError(
            f"{len(parts)} values", file=path, field=f"line {line}", expected=f">= {count} values"
        )
    values = []
    for name, text in zip(names, parts[:count], strict=True):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise SimcityError(
                f"{name} is {text!r}", file=path, field=f"line {line}, {name}", expected="a number"
            )
        values.append(value)
    return values
