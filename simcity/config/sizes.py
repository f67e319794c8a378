"""How much memory a scenario's city and day will take, checked before anything is built.

The world keeps arrays over nodes x steps (the day's records), links x traffic ticks (the
day's equilibria) and zones x zones x steps (each step's demand), besides the graph itself.
`check_footprint` refuses a scenario whose estimate exceeds half this machine's memory, so
``rows = 2**31`` or a day of a million steps on a big city fails in one line at load time
instead of after minutes of swapping (or an out-of-memory kill).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from simcity.errors import SimcityError

GIB = 1024**3
FALLBACK_MEMORY_BYTES = 16 * GIB
"""Assumed physical memory where the system does not say."""

# Bytes per item, rounded up from what the world allocates (float64 = 8 bytes):
_GRAPH_NODE_BYTES = 2_000  # a networkx node with its attribute dict
_GRAPH_LINK_BYTES = 1_000  # a networkx edge with its attribute dict, plus link arrays
_NODE_STEP_BYTES = 16 * 8  # day records: ~16 float64 per node and step
_LINK_TICK_BYTES = 4 * 8  # memoised baseline equilibria: flows, times, ... per tick
_ZONE_PAIR_BYTES = 8  # one float64 per zone pair: per step, per tick, and 8 work arrays
_ZONE_NODE_BYTES = 2 * 8  # free-flow times from every zone to every node


class CitySize(NamedTuple):
    """The counts memory depends on: nodes, directed links and traffic zones."""

    num_nodes: int
    num_links: int
    num_zones: int


def footprint_bytes(size: CitySize, num_steps: int, solve_every_steps: int = 1) -> int:
    """Estimated peak bytes of a city of ``size`` through ``num_steps`` steps (an upper
    estimate, within a small factor).

    >>> footprint_bytes(CitySize(225, 840, 112), 96) < 100 * 1024**2
    True
    """
    n, links, zones = (max(int(v), 0) for v in size)
    ticks = math.ceil(num_steps / max(solve_every_steps, 1))
    return (
        n * _GRAPH_NODE_BYTES
        + links * _GRAPH_LINK_BYTES
        + n * num_steps * _NODE_STEP_BYTES
        + links * (ticks + 8) * _LINK_TICK_BYTES
        + zones * zones * (num_steps + ticks + 8) * _ZONE_PAIR_BYTES
        + zones * n * _ZONE_NODE_BYTES
    )


def memory_bytes() -> int:
    """This machine's physical memory in bytes (`FALLBACK_MEMORY_BYTES` if unknown)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY_BYTES


def check_footprint(size: CitySize, num_steps: int, solve_every_steps: int = 1) -> None:
    """Raise `ValueError` (a one-line reason) when the estimate is over half the memory."""
    need = footprint_bytes(size, num_steps, solve_every_steps)
    limit = memory_bytes() // 2
    if need > limit:
        raise ValueError(
            f"a city of {size.num_nodes:,} nodes, {size.num_links:,} links and "
            f"{size.num_zones:,} zones over {num_steps:,} steps needs about "
            f"{need / GIB:,.1f} GiB, more than half this machine's memory "
            f"({limit / GIB:,.1f} GiB allowed)"
        )


def check_city_size(
    size: CitySize, num_steps: int, solve_every_steps: int, *, file: str | None
) -> None:
    """`check_footprint` of a city read from files (sizes known only once read), as a
    `SimcityError` naming ``file`` and the ``city`` section."""
    try:
        check_footprint(size, num_steps, solve_every_steps)
    except ValueError as err:
        raise SimcityError(
            str(err), file=file, field="city", expected="a smaller city or fewer steps"
        ) from None
