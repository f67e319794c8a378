"""Incidents: state-dependent arrival rates, detection, response and damage.

Pure functions over NumPy arrays; I open incidents, N nodes, L links. Time is minutes.
Arrivals are non-homogeneous Poisson processes whose rates are held constant over a
decision interval (exact for piecewise-constant rates: given the count, arrival times
are uniform over the interval). Detection is a hazard that grows with the monitoring at
the incident's node and a little with its neighbours'; a detected incident is responded
to, which cuts its damage rate and its remaining duration.

Common random numbers. Each incident draws its detection clock, an Exp(1) amount of
integrated hazard, when it arrives, and every count and every arrival's numbers come from
a substream of their own kind, site and interval (`simcity.monitoring.streams`); so two
runs of a world from the same seed under different allocations meet the same incidents
with the same luck, and differ only by what the allocations did.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from simcity.errors import SimcityError
from simcity.monitoring import streams

ACCIDENT, POLLUTION, GRID_OVERLOAD, SCHEDULED = 0, 1, 2, 3
INCIDENT_TYPES: tuple[str, ...] = ("accident", "pollution", "grid_overload", "scheduled")
NUM_TYPES = len(INCIDENT_TYPES)
EMISSIONS_RATIO_CAP = 3.0
"""Emissions ratio past which the pollution rate stops growing
(`pollution_rate_per_h`)."""
LOAD_RATIO_CAP = 1.5
"""Load over feeder capacity past which the overload rate stops growing (protection trips;
`overload_rate_per_h`)."""


@dataclass(frozen=True)
class Incidents:
    """A table of incidents, one entry per incident (struct of arrays, I rows)."""

    kind: np.ndarray  # (I,) int, index into INCIDENT_TYPES
    node: np.ndarray  # (I,) int node index
    link: np.ndarray  # (I,) int link index whose capacity it cuts, -1 for none
    severity: np.ndarray  # (I,) >= 0, 1 = typical
    start_min: np.ndarray  # (I,)
    end_min: np.ndarray  # (I,) planned end; moves earlier when responded to
    damage_per_min: np.ndarray  # (I,) money per minute before response
    detected_min: np.ndarray  # (I,) detection time, NaN while undetected
    damage: np.ndarray  # (I,) money accrued so far
    clock: np.ndarray  # (I,) integrated detection hazard left before detection, Exp(1) at start

    @property
    def num(self) -> int:
        return len(self.kind)

    @property
    def detected(self) -> np.ndarray:
        return ~np.isnan(self.detected_min)

    def select(self, mask: np.ndarray) -> Incidents:
        """The incidents where ``mask`` is true."""
        return Incidents(**{k: v[mask] for k, v in self.__dict__.items()})

    @staticmethod
    def empty() -> Incidents:
        f, i = np.empty(0), np.empty(0, dtype=np.int64)
        return Incidents(i, i, i, f, f, f, f, f, f, f)

    @staticmethod
    def concat(a: Incidents, b: Incidents) -> Incidents:
        return Incidents(**{k: np.concatenate([v, b.__dict__[k]]) for k, v in a.__dict__.items()})


def detection_hazard_per_min(
    allocation: np.ndarray,
    neighbour_mean_allocation: np.ndarray,
    sensors_up: np.ndarray,
    *,
    report_per_min: float,
    sensor_per_min: float,
    unit_per_min: float,
    spill: float,
) -> np.ndarray:
    """Detection hazard (1/min) per node: public reports plus what the sensors see.

    ``h = report + up * (sensor + unit * (a_i + spill * mean_j a_j))``, where ``up`` is the
    share of the node's relevant sensors that work: monitoring analyses sensor streams,
    so it sees nothing where every sensor is down.

    >>> detection_hazard_per_min(np.array([2.0]), np.array([0.0]), np.array([1.0]),
    ...     report_per_min=0.01, sensor_per_min=0.0, unit_per_min=0.05, spill=0.1).tolist()
    [0.11]
    """
    monitored = allocation + spill * neighbour_mean_allocation
    return report_per_min + sensors_up * (sensor_per_min + unit_per_min * monitored)


def detection_probability(hazard_per_min: np.ndarray, minutes: np.ndarray | float) -> np.ndarray:
    """Probability that an incident open for ``minutes`` at this hazard is detected.

    >>> round(float(detection_probability(np.array([0.1]), 15.0)[0]), 4)
    0.7769
    """
    return -np.expm1(-hazard_per_min * minutes)


class StepOutcome(NamedTuple):
    """What the open incidents did over one interval."""

    incidents: Incidents  # all incidents, updated (including ones that closed)
    damage: float  # money accrued in the interval
    newly_detected: np.ndarray  # (I,) bool
    closed: np.ndarray  # (I,) bool: ended by the end of the interval


def advance_incidents(
    incidents: Incidents,
    hazard_per_min: np.ndarray,
    t0_min: float,
    t1_min: float,
    *,
    response_damage_factor: float,
    response_duration_factor: float,
) -> StepOutcome:
    """Advance incidents over [t0, t1): detect, respond, accrue damage, close.

    ``hazard_per_min`` is per incident (I,), constant over the interval. An undetected
    incident is detected once the hazard integrated over its open time reaches its
    ``clock`` (an Exp(1) draw: detection is then a Poisson event at that hazard, exactly).
    On detection its damage rate is multiplied by ``response_damage_factor`` and its
    remaining time by ``response_duration_factor``.
    """
    inc = incidents
    begin = np.maximum(inc.start_min, t0_min)  # exposure inside this interval
    hazard = np.maximum(hazard_per_min, 1e-300)
    undetected = ~inc.detected & (inc.end_min > begin)
    open_until = np.minimum(inc.end_min, t1_min)
    t_detect = begin + inc.clock / hazard
    newly = undetected & (t_detect < open_until)
    spent = np.where(undetected & ~newly, hazard_per_min * np.clip(open_until - begin, 0, None), 0)
    clock = np.where(newly, 0.0, np.maximum(inc.clock - spent, 0.0))
    detected_min = np.where(newly, t_detect, inc.detected_min)
    end_min = np.where(
        newly, t_detect + (inc.end_min - t_detect) * response_duration_factor, inc.end_min
    )
    full_rate = inc.damage_per_min
    slow_until = np.where(np.isnan(detected_min), np.inf, detected_min)
    # Full rate until detection (or the end), reduced rate from detection to the end.
    stop = np.minimum(end_min, t1_min)
    full = np.clip(np.minimum(stop, slow_until) - begin, 0.0, None)
    reduced = np.clip(stop - np.maximum(begin, slow_until), 0.0, None)
    accrued = full_rate * (full + response_damage_factor * reduced)
    updated = replace(
        inc, detected_min=detected_min, end_min=end_min, damage=inc.damage + accrued, clock=clock
    )
    return StepOutcome(updated, float(accrued.sum()), newly, end_min <= t1_min)


def accident_rate_per_h(
    flows_veh_h: np.ndarray,
    length_km: np.ndarray,
    vc: np.ndarray,
    *,
    per_mveh_km: float,
    congestion_gain: float,
) -> np.ndarray:
    """Accident rate per link (1/h): exposure (veh·km/h) times a congestion factor.

    >>> accident_rate_per_h(np.array([1000.0]), np.array([2.0]), np.array([1.0]),
    ...                     per_mveh_km=10.0, congestion_gain=1.0).round(12).tolist()
    [0.04]
    """
    congestion = 1.0 + congestion_gain * np.minimum(vc, 2.0) ** 2  # saturates past v/c = 2
    return per_mveh_km * 1e-6 * flows_veh_h * length_km * congestion


def pollution_rate_per_h(
    emissions_g_h: np.ndarray, *, per_h: float, reference_g_h: float
) -> np.ndarray:
    """Pollution-episode rate per node (1/h), growing with the square of local emissions.

    The emissions ratio saturates at 3 (an episode is already under way past that).
    """
    return per_h * np.minimum(emissions_g_h / reference_g_h, EMISSIONS_RATIO_CAP) ** 2


def overload_rate_per_h(
    load_kw: np.ndarray, capacity_kw: np.ndarray, *, per_h: float, gain: float
) -> np.ndarray:
    """Grid-overload rate per node (1/h): ``per_h * exp(gain * (load / capacity - 1))``.

    The ratio saturates at 1.5: beyond that, protection trips and the rate stops growing.

    >>> overload_rate_per_h(np.array([100.0, 1e9]), np.array([100.0, 1.0]), per_h=0.1,
    ...                     gain=2.0).round(4).tolist()
    [0.1, 0.2718]
    """
    ratio = np.minimum(load_kw / capacity_kw, LOAD_RATIO_CAP)
    return per_h * np.exp(gain * (ratio - 1.0))


MAX_ARRIVALS = 1_000_000
"""Most expected arrivals in one interval over the city (each is a row in the
open-incident table); a rate that reaches it is no city's."""
LARGE_POISSON_MEAN = 30.0
"""Above this mean `poisson_by_inversion` asks SciPy (the term-by-term sum would crawl)."""


def poisson_by_inversion(mean: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Poisson counts (int) with the given means, one uniform in [0, 1) per count.

    The count is the smallest k whose CDF exceeds the uniform, so a small change in a mean
    changes few counts (common random numbers), unlike a sampler that uses a variable
    number of draws per count.

    >>> poisson_by_inversion(np.array([0.0, 1.0, 1.0]), np.array([0.9, 0.3, 0.5])).tolist()
    [0, 0, 1]
    """
    mean = np.asarray(mean, dtype=np.float64)
    large = mean > LARGE_POISSON_MEAN
    if large.any():  # the product of terms would underflow; SciPy's quantile is exact
        from scipy import stats

        count = np.zeros(mean.shape, dtype=np.int64)
        count[large] = stats.poisson.ppf(uniform[large], mean[large]).astype(np.int64)
        small = ~large
        count[small] = poisson_by_inversion(mean[small], uniform[small])
        return count
    term = np.exp(-mean)  # P(k) for k = 0
    cdf = term.copy()
    count = np.zeros(mean.shape, dtype=np.int64)
    below = uniform >= cdf
    k = 0
    while below.any():
        k += 1
        term = np.where(below, term * mean / k, term)
        cdf = np.where(below, cdf + term, cdf)
        count += below
        # Stop where the CDF has reached 1 in floating point (no k can pass the uniform).
        below = below & (uniform >= cdf) & (term > 0.0)
    return count


class Arrivals(NamedTuple):
    """One kind's arrivals over an interval, in site order (I rows)."""

    site: np.ndarray  # (I,) int site index
    time: np.ndarray  # (I,) arrival minute
    draws: np.ndarray  # (I, ARRIVAL_DRAWS) the arrival's uniforms (`streams.per_arrival`)


def sample_arrivals(
    rate_per_h: np.ndarray, t0_min: float, t1_min: float, words: np.ndarray
) -> Arrivals:
    """Poisson arrivals over [t0, t1) at constant rates, from one word per site (`streams`).

    A site's count comes by inversion from its word's uniform (`poisson_by_inversion`);
    its arrivals' times (uniform over the interval: exact given the count) and other
    numbers from the sequence its word seeds, so no site's draws depend on another's.
    """
    mean = rate_per_h * (t1_min - t0_min) / 60.0
    expected = float(np.sum(mean))
    if not expected <= MAX_ARRIVALS:  # also NaN: the scenario's rates are beyond any city
        raise SimcityError(
            f"the incident rates give {expected:.3g} arrivals in one step",
            field="incidents",
            expected=f"at most {MAX_ARRIVALS:,}: lower rates or gains in [incidents]",
        )
    counts = poisson_by_inversion(mean, streams.unit(words))
    site = np.repeat(np.arange(len(rate_per_h)), counts)
    draws = streams.per_arrival(words, counts)
    return Arrivals(site, t0_min + (t1_min - t0_min) * draws[:, streams.TIME], draws)
