"""What the operator believes about the city: estimates, anomaly evidence, unwatched time.

Pure functions over NumPy arrays; N nodes, Q = 3 quantities per node, K = 3 sensor kinds,
I open incidents. `simcity.monitoring.monitor.step_monitoring` calls them once per interval.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from simcity.config.monitoring import MonitoringConfig
from simcity.monitoring import incidents as inc
from simcity.monitoring import sensors
from simcity.monitoring.sensors import (
    NUM_QUANTITIES,
    QUANTITY_FOR_INCIDENT,
    SENSOR_FOR_INCIDENT,
    SENSOR_FOR_QUANTITY,
)


def step_unwatched(
    unwatched: np.ndarray,
    allocation: np.ndarray,
    neighbour_allocation: np.ndarray,
    up_share: np.ndarray,
    dt_min: float,
    cfg: MonitoringConfig,
    close_per_min: float,
) -> np.ndarray:
    """The search belief ``unwatched`` (N,) after an interval of ``dt_min``.

    An operator who knows the detection model but not where incidents are expects
    ``r u_i`` undetected incidents at a node with arrival rate r, where ``u_i`` follows
    ``du/dt = 1 - k_i u`` with ``k_i`` = detection hazard (sensors averaged over the
    incident kinds, monitoring with spill) + the closing rate of a mean incident; it is
    integrated exactly over the interval. Detections do not change it: Poisson
    incidents found and not found are independent.

    >>> cfg = MonitoringConfig(report_per_min=0.01, sensor_per_min=0.0)
    >>> step_unwatched(np.zeros(1), np.zeros(1), np.zeros(1), np.ones((1, 3)), 1e9, cfg,
    ...                0.09).round(6).tolist()
    [10.0]
    """
    up = up_share[:, SENSOR_FOR_INCIDENT[:3]].mean(axis=1)  # (N,)
    k = (
        inc.detection_hazard_per_min(
            allocation,
            neighbour_allocation,
            up,
            report_per_min=cfg.report_per_min,
            sensor_per_min=cfg.sensor_per_min,
            unit_per_min=cfg.unit_per_min,
            spill=cfg.spill,
        )
        + close_per_min
    )
    decay = np.exp(-k * dt_min)
    return unwatched * decay + (1.0 - decay) / k


class Beliefs(NamedTuple):
    """The operator's estimates after an interval, and how far off they are."""

    estimates: np.ndarray  # (N, Q)
    anomaly: np.ndarray  # (N, Q) CUSUM evidence of unexplained readings
    error_by_node: np.ndarray  # (N,) mean absolute error over the node's quantities


def observe(
    normal: np.ndarray,
    open_incidents: inc.Incidents,
    estimates: np.ndarray | None,
    anomaly: np.ndarray,
    allocation: np.ndarray,
    up_share: np.ndarray,
    draws: np.ndarray,
    cfg: MonitoringConfig,
    predicted: np.ndarray | None = None,
) -> Beliefs:
    """Update the estimates and the anomaly evidence from the interval's readings.

    The sensors read ``normal`` (N, Q) (the quantities without the incidents' own
    disturbance) plus each open incident's disturbance (`alarm_snr`). The operator's
    model predicts ``predicted`` (N, Q; None: ``normal``): the quantities under the
    capacities it knows, so an undetected accident's congestion is part of its signature,
    not of the prediction. The residual of a reading against the prediction and the disturbance
    of the incidents already known, in the reading's own noise SDs, feeds a CUSUM per
    node and quantity (`simcity.monitoring.sensors.cusum`, slack ``alarm_snr / 2``).
    Without ``estimates`` (the first interval) the operator starts from city-wide means.
    ``draws`` (N, Q) holds the readings' standard normal draws.
    """
    n = len(normal)
    noise_sd = cfg.noise_sd * np.maximum(normal.mean(axis=0), 1e-3)  # (Q,)
    quantity = QUANTITY_FOR_INCIDENT[open_incidents.kind]
    shift = cfg.alarm_snr * open_incidents.severity * noise_sd[quantity]  # (I,)
    cell = open_incidents.node * NUM_QUANTITIES + quantity  # (I,)

    def per_node(mask: np.ndarray) -> np.ndarray:
        """(N, Q) summed shift of the open incidents where ``mask`` holds."""
        out = np.zeros(n * NUM_QUANTITIES)
        np.add.at(out, cell[mask], shift[mask])
        return out.reshape(n, NUM_QUANTITIES)

    disturbance = per_node(np.ones(open_incidents.num, bool))
    known = per_node(open_incidents.detected)
    truth = normal + disturbance
    if estimates is None:
        estimates = np.broadcast_to(truth.mean(axis=0), truth.shape).copy()
    seeing = up_share[:, SENSOR_FOR_QUANTITY] > 0  # (N, Q)
    estimates = sensors.observe(
        truth,
        estimates,
        seeing,
        allocation,
        draws,
        noise_sd=noise_sd,
        units_halving_noise=cfg.units_halving_noise,
    )
    if cfg.alarm_snr > 0 and cfg.noise_sd > 0:
        spread = sensors.reading_sd(allocation, noise_sd, cfg.units_halving_noise)
        expected = normal if predicted is None else predicted
        unexplained = estimates - expected - known
        anomaly = sensors.cusum(anomaly, unexplained / spread, seeing, slack=0.5 * cfg.alarm_snr)
    return Beliefs(estimates, anomaly, np.abs(estimates - truth).mean(axis=1))
