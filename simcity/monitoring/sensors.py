"""Sensors: installed counts, failures and repairs, and what the operator observes.

N nodes, K sensor kinds (traffic counter, air quality, energy meter). Each sensor is a
two-state Markov chain (up, down) with failure rate 1/MTBF and repair rate 1/MTTR; over
an interval every sensor changes state with the chain's exact transition probability.
The random numbers are the caller's: one uniform per node, kind and transition, and one
normal per reading (`simcity.monitoring.streams`: no site's numbers depend on another's).
"""

from __future__ import annotations

import numpy as np

from simcity.monitoring.streams import binomial_by_inversion

TRAFFIC_COUNTER, AIR_QUALITY, ENERGY_METER = 0, 1, 2
SENSOR_KINDS: tuple[str, ...] = ("traffic_counter", "air_quality", "energy_meter")
NUM_KINDS = len(SENSOR_KINDS)

NUM_QUANTITIES = 3
"""Quantities estimated per node: congestion, load over feeder capacity, emissions ratio."""
# The sensor kind that sees each incident kind (accident, pollution, overload, scheduled).
SENSOR_FOR_INCIDENT = np.array([TRAFFIC_COUNTER, AIR_QUALITY, ENERGY_METER, TRAFFIC_COUNTER])
# The sensor kind that reads each estimated quantity.
SENSOR_FOR_QUANTITY = np.array([TRAFFIC_COUNTER, ENERGY_METER, AIR_QUALITY])
# The quantity each incident kind disturbs in its node's readings (see `alarm_snr`).
QUANTITY_FOR_INCIDENT = np.array([0, 2, 1, 0])
for _table in (SENSOR_FOR_INCIDENT, SENSOR_FOR_QUANTITY, QUANTITY_FOR_INCIDENT):
    _table.setflags(write=False)


def transition_probabilities(dt_min: float, mtbf_h: float, mttr_h: float) -> tuple[float, float]:
    """P(up -> down) and P(down -> up) over ``dt_min`` for a two-state Markov chain.

    >>> p_fail, p_repair = transition_probabilities(60.0, 1.0, 1.0)
    >>> round(p_fail, 4), round(p_repair, 4)
    (0.4323, 0.4323)
    """
    fail, repair = 1.0 / (60.0 * mtbf_h), 1.0 / (60.0 * mttr_h)
    total = fail + repair
    settle = -np.expm1(-total * dt_min)
    return float(fail / total * settle), float(repair / total * settle)


def step_sensors(
    installed: np.ndarray,
    up: np.ndarray,
    dt_min: float,
    uniforms: np.ndarray,
    *,
    mtbf_h: float,
    mttr_h: float,
) -> np.ndarray:
    """Working sensors per node and kind after an interval (N, K) ints.

    Each working sensor fails and each broken one is repaired with the chain's exact
    transition probabilities; the counts are binomial, by inversion of ``uniforms``
    (2, N, K) in (0, 1): failures, then repairs, one number per node, kind and transition.

    >>> step_sensors(np.array([[4, 4]]), np.array([[4, 0]]), 60.0, np.full((2, 1, 2), 0.5),
    ...              mtbf_h=1.0, mttr_h=1.0).tolist()
    [[2, 2]]
    """
    p_fail, p_repair = transition_probabilities(dt_min, mtbf_h, mttr_h)
    p = np.array([p_fail, p_repair]).reshape((2,) + (1,) * up.ndim)
    failed, repaired = binomial_by_inversion(np.stack([up, installed - up]), p, uniforms)
    return up - failed + repaired


def up_share(installed: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Share of each kind's sensors that work (N, K); 0 where none are installed."""
    return np.divide(up, installed, out=np.zeros(up.shape), where=installed > 0)


def reading_sd(
    allocation: np.ndarray, noise_sd: np.ndarray | float, units_halving_noise: float
) -> np.ndarray:
    """Spread of each node's reading (N, Q) or (N, 1): ``noise_sd / sqrt(1 + 3 a / h)``."""
    scale = 1.0 / np.sqrt(1.0 + 3.0 * allocation / units_halving_noise)  # (N,)
    return scale[:, None] * np.atleast_1d(noise_sd)


def observe(
    truth: np.ndarray,
    previous: np.ndarray,
    seeing: np.ndarray,
    allocation: np.ndarray,
    normal: np.ndarray,
    *,
    noise_sd: np.ndarray | float,
    units_halving_noise: float,
) -> np.ndarray:
    """The operator's estimates of per-node quantities (N, Q), never negative.

    Where a node's sensors see (``seeing`` true), the reading is the truth plus Gaussian
    noise whose spread ``noise_sd / sqrt(1 + 3 a / units_halving_noise)`` halves at
    ``units_halving_noise`` monitoring units (averaging more analysed streams); where all
    its sensors are down there is no reading and the previous estimate stands. ``normal``
    (the truth's shape) holds the readings' standard normal draws.

    >>> observe(np.ones((2, 1)), np.zeros((2, 1)), np.array([[True], [False]]),
    ...         np.array([0.0, 3.0]), np.ones((2, 1)), noise_sd=0.5,
    ...         units_halving_noise=1.0).tolist()
    [[1.5], [0.0]]
    """
    noise = normal * reading_sd(allocation, noise_sd, units_halving_noise)
    return np.where(seeing, np.maximum(truth + noise, 0.0), previous)


def cusum(previous: np.ndarray, z: np.ndarray, seeing: np.ndarray, *, slack: float) -> np.ndarray:
    """One step of Page's one-sided CUSUM on standardised residuals (any shape).

    ``S = max(0, S_prev + z - slack)`` where there is a reading (``seeing``); elsewhere the
    evidence stands. With ``slack`` half the shift to detect, it is the sequential test for
    a mean shift of that size in unit-variance noise.

    >>> cusum(np.array([0.0, 1.0, 1.0]), np.array([2.0, -3.0, 5.0]),
    ...       np.array([True, True, False]), slack=0.5).tolist()
    [1.5, 0.0, 1.0]
    """
    return np.where(seeing, np.maximum(previous + z - slack, 0.0), previous)
