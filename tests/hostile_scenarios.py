"""Builders for the hostile scenario corpus: a good scenario as a dict, a small TOML
writer, special files, and the check every case makes (a `SimcityError` naming the file
and the field, quickly, or a valid `Scenario`)."""

from __future__ import annotations

import contextlib
import json
import math
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simcity.config.scenario import Scenario, load_scenario
from simcity.errors import SimcityError

SECONDS = 20
"""Every case ends within this (a FIFO read would hang forever; each case takes
milliseconds, the margin is for a busy machine)."""


def good() -> dict[str, Any]:
    """A small valid scenario (a 3 x 3 grid with an event, a scheduled incident, an
    analytics tier and both carbon tables), as the raw table a file holds."""
    return {
        "name": "hostile",
        "seed": 1,
        "city": {
            "source": "grid",
            "rows": 3,
            "cols": 3,
            "origin_lon": 2.35,
            "origin_lat": 48.85,
        },
        "carbon": {"source": "constant", "intensity_g_per_kwh": 300.0},
        "datacentre_carbon": {"source": "daily", "mean_g_per_kwh": 200.0},
        "events": [
            {
                "name": "match",
                "lon": 2.35,
                "lat": 48.85,
                "start": "18:00",
                "end": "20:00",
                "attendees": 1000,
            }
        ],
        "incidents": {"scheduled": [{"name": "drill", "lon": 2.35, "lat": 48.85, "at": "10:00"}]},
        "compute": {"tiers": [{"name": "detector", "flop_per_unit_min": 1.15e15}]},
    }


def ring() -> dict[str, Any]:
    """`good` on a ring-radial city."""
    city = {"source": "ring_radial", "num_rings": 2, "num_spokes": 4}
    return {**good(), "city": {**city, "origin_lon": 16.37, "origin_lat": 48.2}}


def web() -> dict[str, Any]:
    """`good` on a random geometric city."""
    city = {"source": "random_geometric", "num_nodes": 12}
    return {**good(), "city": {**city, "origin_lon": -95.4, "origin_lat": 29.8}}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(table: dict[str, Any], prefix: str = "") -> str:
    """TOML text of ``table``: scalars first, then sub-tables, then arrays of tables."""
    lines: list[str] = []
    tables, arrays = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{json.dumps(key)} = {toml_value(value)}")
    for key, value in tables:
        name = f"{prefix}{json.dumps(key)}"
        lines.append(f"[{name}]")
        lines.append(to_toml(value, name + "."))
    for key, items in arrays:
        name = f"{prefix}{json.dumps(key)}"
        for item in items:
            lines.append(f"[[{name}]]")
            lines.append(to_toml(item, name + "."))
    return "\n".join(lines) + "\n"


def with_value(field: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """``base`` (default `good`) with the dotted ``field`` set to ``value``."""
    raw = json.loads(json.dumps(base or good()))
    *sections, key = field.split(".")
    table = raw
    for part in sections:
        table = table[int(part)] if part.isdigit() else table.setdefault(part, {})
    table[key] = value
    return raw


def write(folder: Path, raw: dict[str, Any] | str | bytes, name: str = "case.toml") -> Path:
    path = folder / name
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    else:
        path.write_text(raw if isinstance(raw, str) else to_toml(raw), encoding="utf-8")
    return path


@contextlib.contextmanager
def deadline(seconds: int = SECONDS) -> Iterator[None]:
    """Fail (rather than hang) when the body runs past ``seconds``."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s (a blocking read?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def refused(path: Path | str, field: str | None = None, words: str = "") -> SimcityError:
    """Load ``path``: it must raise a `SimcityError` (nothing else, and soon) whose message
    is one line naming the file (when it is a file the user gave) and exactly ``field``."""
    with deadline(), pytest.raises(SimcityError) as info:
        load_scenario(path)
    err = info.value
    message = str(err)
    assert "\n" not in message and len(message) - len(err.file or "") < 1_000, message
    assert err.file is not None, message
    if field is not None:
        assert err.field == field, message
    assert words in message, message
    return err


def loads_or_refuses(path: Path) -> Scenario | SimcityError:
    """Property of every input: a valid `Scenario` or a one-line `SimcityError`."""
    with deadline():
        try:
            return load_scenario(path)
        except SimcityError as err:
            assert "\n" not in str(err) and err.file is not None, str(err)
            return err
