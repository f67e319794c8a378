"""Reading scenario files: guarded TOML, ``base`` chains, and one-line error messages.

A scenario file is read through `simcity.safe_io` (a regular file of at most 1 MiB, UTF-8);
tables and arrays nest at most `MAX_DEPTH` deep; a ``base`` chain is at most
`MAX_BASE_CHAIN` files and never a cycle. A ``base`` is a path relative to the file that
names it or, when no such file exists there, a bundled scenario by name (``"downtown"`` or
``"downtown.toml"``), so a user's variant of a bundled scenario works from any folder;
`base_chain` lists the files a scenario inherits from. `read_chain` also says which file of
the chain set each key, so an error names the file that holds the bad value. `describe_error` turns
a pydantic error into the dotted field and a message that quotes at most a short excerpt.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic_core import ErrorDetails

from simcity.config.base import MAX_PATH_CHARS, FieldError
from simcity.errors import SimcityError
from simcity.safe_io import SCENARIO_MAX_BYTES, check_input_file, excerpt, read_text

MAX_BASE_CHAIN = 16
"""Most files in a ``base`` chain (the file itself included)."""
MAX_DEPTH = 32
"""Deepest nesting of tables and arrays in a scenario file (the schema needs 4)."""


SCENARIO_FILE = "a scenario file (UTF-8 TOML of at most 1 MiB)"


def bundled_dir() -> Path:
    """The folder of bundled scenario files (installed copy, else the source tree's)."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "_bundled_scenarios"
    return installed if installed.is_dir() else package.parent / "scenarios"


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario names and their files, sorted by name."""
    return {p.stem: p for p in sorted(bundled_dir().glob("*.toml"))}


def read_toml(path: Path, *, expected: str = SCENARIO_FILE) -> dict[str, Any]:
    """The TOML table in the file ``path``, read through `simcity.safe_io`; tables and
    arrays nest at most `MAX_DEPTH` deep. Errors name the file, never quote it."""
    text = read_text(path, expected=expected, max_bytes=SCENARIO_MAX_BYTES)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SimcityError(f"not valid TOML: {err}", file=path, expected=expected) from None
    except RecursionError:
        raise SimcityError(
            "nests arrays or tables too deeply",
            file=path,
            expected=f"at most {MAX_DEPTH} levels",
        ) from None
    except ValueError:  # an integer of more than 4,300 digits
        raise SimcityError("holds a number too long to read", file=path) from None
    _check_depth(raw, path)
    return raw


def _check_depth(raw: dict[str, Any], path: Path) -> None:
    stack: list[tuple[Any, int]] = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SimcityError(
                "nests arrays or tables too deeply",
                file=path,
                expected=f"at most {MAX_DEPTH} levels",
            )
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


Origins = dict[tuple[str, ...], Path]
"""Which file of a ``base`` chain set each key path (tables and their keys)."""


def read_chain(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Origins]:
    """The file's table merged over its ``base`` chain's, and which file set each key;
    ``chain``: the files that led here."""
    raw = read_toml(path)
    base = raw.pop("base", None)
    origins = {key: path for key in _key_paths(raw)}
    if base is None:
        return raw, origins
    if not isinstance(base, str) or not base.strip() or len(base) > MAX_PATH_CHARS:
        raise SimcityError(
            f"is {excerpt(base)}",
            file=path,
            field="base",
            expected="the name of another scenario file",
        )
    parent = _base_file(path, base)
    if parent == path or parent in chain:
        raise SimcityError(
            f"scenario bases form a cycle through {excerpt(parent, 200)}", file=path, field="base"
        )
    if len(chain) + 2 > MAX_BASE_CHAIN:
        raise SimcityError(
            "the chain of base files is too long",
            file=path,
            field="base",
            expected=f"at most {MAX_BASE_CHAIN} files in a chain",
        )
    try:
        check_input_file(parent, expected=SCENARIO_FILE, max_bytes=SCENARIO_MAX_BYTES)
    except SimcityError as err:
        raise SimcityError(
            f"{excerpt(parent, 200)} {err.message}",
            file=path,
            field="base",
            expected=err.expected,
        ) from None
    inherited, inherited_origins = read_chain(parent, (*chain, path))
    return _merge(inherited, raw), {**inherited_origins, **origins}


def _base_file(path: Path, base: str) -> Path:
    """The file ``base`` names: relative to ``path``'s folder, else a bundled scenario."""
    try:
        parent = (path.parent / base).resolve()
        exists = parent.exists()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        raise SimcityError(
            f"{excerpt(base)} is not a usable path", file=path, field="base"
        ) from None
    if exists:
        return parent
    name = base.strip().removesuffix(".toml")
    bundled = bundled_scenarios()
    if name in bundled:
        return bundled[name].resolve()
    raise SimcityError(
        f"{excerpt(base)}: no such file next to this one and no bundled scenario of that name",
        file=path,
        field="base",
        expected="a path relative to this file's folder or one of: " + ", ".join(bundled),
    )


def base_chain(path: Path) -> list[Path]:
    """The files ``path`` inherits from, nearest first (its ``base``, that file's, ...)."""
    chain: list[Path] = []
    current = path
    while True:
        base = read_toml(current).get("base")
        if not isinstance(base, str) or len(chain) >= MAX_BASE_CHAIN:
            return chain
        current = _base_file(current, base)
        if current in chain or current == path:
            return chain
        chain.append(current)


def _key_paths(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path in ``table``, through sub-tables (arrays are leaves)."""
    paths, stack = [], [(table, prefix)]
    while stack:
        current, at = stack.pop()
        for key, value in current.items():
            paths.append((*at, key))
            if isinstance(value, dict):
                stack.append((value, (*at, key)))
    return paths


def origin(field: str, origins: Origins, default: Path) -> Path:
    """The file that set ``field`` (dotted), or the nearest table above it; else ``default``."""
    parts = tuple(field.split("."))
    for end in range(len(parts), 0, -1):
        if parts[:end] in origins:
            return origins[parts[:end]]
    return default


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_UNIONS = ("city", "carbon", "datacentre_carbon")
_TAGS = ("grid", "ring_radial", "random_geometric", "tntp", "graphml", "constant", "daily", "trace")
MAX_MESSAGE = 300


def quote(value: Any) -> str:
    """A short quote of a value for a message: numbers as written, the rest `excerpt`."""
    if isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        digits = len(hex(value)) - 2  # repr of a huge int is slow or refused
        return repr(value) if digits <= 16 else f"an integer of {digits * 4} bits"
    if isinstance(value, (dict, list, tuple)):
        return f"a {'table' if isinstance(value, dict) else 'list'} of {len(value)}"
    return excerpt(value)


def describe_error(error: ErrorDetails) -> tuple[str, str]:
    """The dotted field and a one-line message of a pydantic error from a scenario."""
    loc = [str(part) for part in error["loc"]]
    # Drop the tag pydantic adds inside a tagged union ("city.grid.rows" -> "city.rows").
    loc = [p for i, p in enumerate(loc) if not (i and loc[i - 1] in _UNIONS and p in _TAGS)]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc.extend(cause.field.split("."))
    field = ".".join(_key(p) for p in loc) or "<top>"
    got = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        return field, "unknown key"
    if kind == "missing":
        return field, "missing required key"
    if kind == "union_tag_invalid":
        tags = (error.get("ctx") or {}).get("expected_tags", "")
        return field, f"unknown source {quote(got)} (expected one of {tags})"
    if kind == "union_tag_not_found":
        return field, "missing required key source"
    text = _printable(str(error["msg"]).removeprefix("Value error, "))
    if not isinstance(cause, ValueError) and not isinstance(got, dict):
        text += f" (got {quote(got)})"
    return field, text


def describe_errors(errors: Sequence[ErrorDetails]) -> tuple[str, str]:
    """The dotted field and one-line message of the error to show of pydantic's ``errors``,
    with a count of the others. A typo of a key (an unknown key close to a key missing
    beside it) comes first, with its fix; else the first error, naming an unknown key too
    when there is one (a typo also makes the key it meant "missing").

    >>> describe_errors([
    ...     {"type": "missing", "loc": ("city", "rows"), "msg": "", "input": {}},
    ...     {"type": "extra_forbidden", "loc": ("city", "rowz"), "msg": "", "input": 3},
    ... ])
    ('city.rowz', 'unknown key (did you mean rows?) (+1 more)')
    >>> describe_errors([
    ...     {"type": "missing", "loc": ("city", "rows"), "msg": "", "input": {}},
    ...     {"type": "extra_forbidden", "loc": ("city", "banana"), "msg": "", "input": 3},
    ... ])
    ('city.rows', 'missing required key; unknown key city.banana (+1 more)')
    """
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    typos = [(e, fix) for e in unknown if (fix := _close_missing(e, errors))]
    if typos:
        first, fix = typos[0]
        field, text = describe_error(first)
        text += f" (did you mean {' or '.join(fix)}?)"
    else:
        first = errors[0]
        field, text = describe_error(first)
        if unknown and first["type"] != "extra_forbidden":
            text += f"; unknown key {describe_error(unknown[0])[0]}"
    if len(errors) > 1:
        text += f" (+{len(errors) - 1} more)"
    return field, text


def _close_missing(unknown: ErrorDetails, errors: Sequence[ErrorDetails]) -> list[str]:
    """The keys missing beside an unknown key that are close to its name (difflib)."""
    parent, name = unknown["loc"][:-1], str(unknown["loc"][-1]) if unknown["loc"] else ""
    missing = [
        str(e["loc"][-1])
        for e in errors
        if e["type"] == "missing" and e["loc"] and e["loc"][:-1] == parent
    ]
    return difflib.get_close_matches(name, missing, n=3) if name else []


def _key(part: str) -> str:
    """A part of a dotted field as written, or quoted when odd (long, dots, control)."""
    plain = len(part) <= 60 and part.isprintable() and "." not in part and part.strip() == part
    return part if plain and part else excerpt(part, 60)


def _printable(text: str) -> str:
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
