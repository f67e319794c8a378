"""The TNTP format's lines: comments, the ``<KEY> value`` metadata block, numeric rows.

Shared by the readers in `simcity.city.tntp`; every file is read through `simcity.safe_io`
(a regular, bounded, UTF-8 file) and every error names the file and the line.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from simcity.errors import SimcityError
from simcity.safe_io import excerpt, read_text

_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
"""An integer TNTP metadata value: plain ASCII digits, small enough to be a count."""


def one_file(root: Path, pattern: str) -> Path:
    found = sorted(root.glob(pattern))
    if len(found) != 1:
        raise SimcityError(
            f"{len(found)} files match {pattern}", file=root, expected=f"exactly one {pattern}"
        )
    return found[0]


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered lines of ``path`` without comments or blanks."""
    text = read_text(path, expected="a TNTP text file")
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
                f"unexpected text {excerpt(text, 30)} in the metadata",
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
    if _INTEGER.fullmatch(meta[key]) is None:
        raise SimcityError(
            f"is {excerpt(meta[key])}", file=path, field=f"<{key}>", expected="an integer"
        )
    return int(meta[key])


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
                f"{name} is {excerpt(text)}",
                file=path,
                field=f"line {line}, {name}",
                expected="a finite number",
            )
        values.append(value)
    return values


def node_id(value: float, num_nodes: int, path: Path, field: str) -> int:
    """``value`` as a node id in 1..``num_nodes``, else a `SimcityError` naming ``field``."""
    if not (math.isfinite(value) and value == int(value) and 1 <= value <= num_nodes):
        raise SimcityError(
            f"unknown node {value:g}",
            file=path,
            field=field,
            expected=f"a node id in 1..{num_nodes}",
        )
    return int(value)
