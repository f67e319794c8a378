"""Numbers in OSM tag values as OSMnx saves them: strict, with the units and lists OSM uses.

Every value of a GraphML file may be text. A number is a plain decimal float (``-400``,
``5e3``, ``0.25``); nothing is guessed from part of a value, so ``"1,000"`` or ``"40 km"``
is an error rather than 1 or 40. What a tag may hold besides a number:

- ``maxspeed``: a unit after the number, ``mph``, ``knots`` or ``km/h`` (also ``kmh``,
  ``kph``; none means km/h); a zone code such as ``DE:zone30`` (30 km/h); or one of OSM's
  words for "no posted number" (``none``, ``signals``, ``walk``, ``variable``, ``national``,
  a country code such as ``RU:urban``), which leaves the speed to the road's class.
- ``maxspeed`` and ``lanes``: a list, either OSMnx's ``"['40', '50']"`` (edges merged by
  simplification) or OSM's ``"30;50"``; its first entry applies, as before lists had
  their own rule.

Errors are `SimcityError` naming the file, the edge and the attribute.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from simcity.errors import SimcityError
from simcity.safe_io import excerpt

MPH_KMH = 1.609344
KNOT_KMH = 1.852
#: Free speeds outside these are unit mistakes (and a tiny one makes an infinite time).
MIN_SPEED_KMH, MAX_SPEED_KMH = 1.0, 500.0

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPEED = re.compile(r"(?P<number>\S+?)\s*(?P<unit>mph|knots|km/h|kmh|kph)?", re.IGNORECASE)
_ZONE = re.compile(r"[A-Za-z]{2}:zone:?(?P<number>[0-9]+)")
_NO_NUMBER = re.compile(r"none|signals|walk|variable|national|[A-Za-z]{2}:[A-Za-z_:]+")
_UNITS = {"mph": MPH_KMH, "knots": KNOT_KMH, "km/h": 1.0, "kmh": 1.0, "kph": 1.0}


def number(text: str) -> float | None:
    """``text`` as a finite decimal float, or None.

    >>> number("-400"), number("5e3"), number("1,000"), number("inf")
    (-400.0, 5000.0, None, None)
    """
    if _DECIMAL.fullmatch(text.strip()) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def entries(value: object) -> list[str]:
    """The entries of a tag value: one, or those of an OSMnx or OSM list.

    >>> entries("['40', '50']"), entries("30;50"), entries(2.0)
    (['40', '50'], ['30', '50'], ['2.0'])
    """
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        return [e.strip().strip("'\"").strip() for e in text[1:-1].split(",")]
    return [e.strip() for e in text.split(";")]


class EdgeValues:
    """Reads the attributes of one edge ``u -> v`` of ``path``, naming them in errors."""

    def __init__(self, path: Path, u: object, v: object, data: dict[str, object]) -> None:
        self.path, self.data = path, data
        self.edge = f"edge {excerpt(u, 30)}->{excerpt(v, 30)}"

    def error(self, key: str, expected: str) -> SimcityError:
        return SimcityError(
            f"{self.edge} has {key}={excerpt(self.data.get(key))}",
            file=self.path,
            field=f"edge.{key}",
            expected=expected,
        )

    def plain(self, key: str, *, positive: bool) -> float | None:
        """A single number (None where absent); refused if negative, or zero if ``positive``."""
        value = self.data.get(key)
        if value is None:
            return None
        x = as_number(value)
        bound = "> 0" if positive else ">= 0"
        if x is None or x < 0 or (positive and x == 0):
            raise self.error(key, f"one finite number {bound}")
        return x

    def lanes(self) -> float | None:
        """Lanes (both directions), the first entry of a list; None where absent."""
        value = self.data.get("lanes")
        if value is None:
            return None
        x = as_number(value)
        if x is None:
            first = entries(value)[0]
            x = number(first)
        if x is None or x <= 0:
            raise self.error("lanes", "a number of lanes > 0, or a list of them")
        return x

    def speed_kmh(self, key: str) -> float | None:
        """A speed in km/h from ``speed_kph`` or ``maxspeed``; None where absent or unposted."""
        value = self.data.get(key)
        if value is None:
            return None
        expected = (
            f"a speed from {MIN_SPEED_KMH:g} to {MAX_SPEED_KMH:g} km/h: a number (with mph, "
            "knots or km/h), a zone code, an OSM word for no number, or a list of them"
        )
        x = as_number(value)
        if x is None and key == "maxspeed":
            try:
                x = _maxspeed(entries(value)[0])
            except ValueError:
                raise self.error(key, expected) from None
            if x is None:
                return None
        if x is None or not MIN_SPEED_KMH <= x <= MAX_SPEED_KMH:
            raise self.error(key, expected)
        return x


def as_number(value: object) -> float | None:
    """A typed number (GraphML ``double``/``int`` keys) or numeric text; bools are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            x = float(value)  # a GraphML ``long`` may be past the float range
        except OverflowError:
            return None
        return x if math.isfinite(x) else None
    return number(str(value))


def _maxspeed(text: str) -> float | None:
    """km/h of one OSM ``maxspeed`` entry; None for a word meaning no number; else ValueError."""
    zone = _ZONE.fullmatch(text)
    if zone is not None:
        return float(zone.group("number"))
    if _NO_NUMBER.fullmatch(text) is not None:
        return None
    match = _SPEED.fullmatch(text)
    value = None if match is None else number(match.group("number"))
    if match is None or value is None:
        raise ValueError(text)
    unit = (match.group("unit") or "km/h").lower()
    return value * _UNITS[unit]
