"""Common random numbers by construction: one substream per kind of draw, site and interval.

Every random number monitoring uses comes from a 64-bit word that belongs to one
(kind of draw, site, interval): the word at a fixed position of the interval's block,
which a Philox generator (counter-based) keyed by the episode draws from the counter
``(0, interval, 0, 0)``. The block's layout (`Layout`) depends only on the city and the
scenario, so how many incidents arrived, how many sensors work or what the policy
allocated never moves another site's numbers. A site that needs several numbers (the
arrival time, severity, duration and detection clock of each incident that arrives there)
draws them from a SplitMix64 sequence seeded by its word: arrival ``j`` at a site gets
the same numbers whatever the site's count, and whatever any other site's count.

Two runs of a world from the same seed under different allocations thus meet the same
incidents, sensor failures and reading noise wherever their states agree, and differ
only by what the allocations did (paired policy comparisons and
`agents.training.train`'s twin rollouts rely on this).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S12 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(12)
_UNIT = 2.0**-52

ARRIVAL_DRAWS = 4
"""Numbers each arriving incident draws: time, severity, duration, detection clock."""
TIME, SEVERITY, DURATION, CLOCK = range(ARRIVAL_DRAWS)


class Layout(NamedTuple):
    """Sites per kind of draw in an interval's block, in block order."""

    arrival: int  # L links, then N nodes twice: counts of accidents, pollution, overloads
    scheduled: int  # the scenario's planned incidents: the detection clock of each
    sensor: int  # 2 * N * K: failures of working sensors, then repairs of broken ones
    noise: int  # N * Q: the reading noise per node and quantity


class IntervalWords(NamedTuple):
    """One interval's words (uint64), one per site of each kind of draw (`Layout`)."""

    arrival: np.ndarray
    scheduled: np.ndarray
    sensor: np.ndarray
    noise: np.ndarray


def episode_key(rng: np.random.Generator) -> np.ndarray:
    """The episode's Philox key (2,) uint64, from the one generator the episode is given."""
    return rng.integers(2**63, size=2).astype(np.uint64)


def interval_words(
    key: np.ndarray, t0_min: float, layout: Layout, scratch: np.random.Philox | None = None
) -> IntervalWords:
    """The words of the interval that starts at ``t0_min`` (counter: whole milliseconds).

    ``scratch``, a Philox generator whose whole state this sets first, saves building one
    (the words are the same with or without it).

    >>> key, layout = np.array([1, 2], np.uint64), Layout(2, 1, 4, 2)
    >>> a = interval_words(key, 15.0, layout)
    >>> b = interval_words(key, 15.0, layout._replace(arrival=3), np.random.Philox(0))
    >>> c = interval_words(key, 30.0, layout)
    >>> bool((a.arrival == b.arrival[:2]).all()), bool((a.arrival == c.arrival).any())
    (True, False)
    """
    counter = np.array([0, round(t0_min * 1000.0), 0, 0], dtype=np.uint64)
    if scratch is None:
        scratch = np.random.Philox(key=key, counter=counter)
    else:
        scratch.state = {
            "bit_generator": "Philox",
            "state": {"counter": counter, "key": key},
            "buffer": np.zeros(4, dtype=np.uint64),
            "buffer_pos": 4,  # the buffer is spent: the next word comes from the counter
            "has_uint32": 0,
            "uinteger": 0,
        }
    block = scratch.random_raw(sum(layout))
    parts, start = [], 0
    for size in layout:
        parts.append(block[start : start + size])
        start += size
    return IntervalWords(*parts)


def unit(words: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1), one per word (its top 52 bits, centred in their cell: never 0
    or 1, so logarithms and normal quantiles of them are finite).

    >>> unit(np.array([0, 2**64 - 1], dtype=np.uint64)).tolist() == [2**-53, 1 - 2**-53]
    True
    """
    return ((words >> _S12).astype(np.float64) + 0.5) * _UNIT


def normal(uniform: np.ndarray) -> np.ndarray:
    """Standard normals by inversion of uniforms in (0, 1) (one number each).

    >>> normal(np.array([0.5, 0.975])).round(2).tolist()
    [0.0, 1.96]
    """
    from scipy.special import ndtri

    return np.asarray(ndtri(uniform))


def _splitmix(state: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Stafford's Mix13) of each state, uint64."""
    z = state ^ (state >> _S30)
    z = z * _MIX1
    z ^= z >> _S27
    z *= _MIX2
    z ^= z >> _S31
    return z


def per_arrival(words: np.ndarray, counts: np.ndarray, draws: int = ARRIVAL_DRAWS) -> np.ndarray:
    """(sum(counts), draws) uniforms in (0, 1): arrival ``j`` at site ``s`` (arrivals in
    site order, ``counts[s]`` of them at ``s``) gets draws ``j * draws + 1, ...`` of the
    SplitMix64 sequence seeded by ``words[s]``, whatever the other counts.

    >>> w = np.array([5, 9], dtype=np.uint64)
    >>> a, b = per_arrival(w, np.array([1, 2])), per_arrival(w, np.array([3, 2]))
    >>> bool((a[1:] == b[3:]).all()), bool((a[0] == b[0]).all())
    (True, True)
    """
    total = int(counts.sum())
    if total == 0:
        return np.empty((0, draws))
    first = np.cumsum(counts) - counts
    index = np.arange(total) - np.repeat(first, counts)
    step = (index[:, None] * draws + np.arange(1, draws + 1)).astype(np.uint64)
    return unit(_splitmix(np.repeat(words, counts)[:, None] + step * _GOLDEN))


def binomial_by_inversion(n: np.ndarray, p: np.ndarray | float, uniform: np.ndarray) -> np.ndarray:
    """Binomial(n, p) counts (int), one uniform in (0, 1) per count: the smallest k whose
    CDF exceeds the uniform (so each count uses its own number, whatever n is elsewhere).
    ``p`` broadcasts against ``n``.

    >>> binomial_by_inversion(np.array([0, 3, 3, 3, 2, 2]),
    ...     np.array([0.5, 0.5, 0.5, 0.5, 0.0, 1.0]), np.array([0.9, 0.1, 0.2, 0.99, 0.9, 0.1]))
    array([0, 0, 1, 3, 0, 2])
    """
    n = np.asarray(n, dtype=np.int64)
    q = 1.0 - np.asarray(p, dtype=np.float64)
    odds = (1.0 - q) / np.maximum(q, np.finfo(np.float64).tiny)
    term = q**n  # P(0)
    cdf = term
    count = np.zeros(n.shape, dtype=np.int64)
    below = (uniform >= cdf) & (n > 0)
    k = 0
    while below.any():
        term = term * ((n - k) / (k + 1)) * odds
        k += 1
        cdf = cdf + term
        count += below
        # Stop at n (also where the CDF has reached 1 in floating point).
        below &= (uniform >= cdf) & (count < n)
    return count
