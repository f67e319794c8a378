"""Monitoring state of a world: sensors, incidents, the operator's estimates, the bill.

N nodes, L links, K = 3 sensor kinds, Q = 3 estimated quantities per node: congestion
(mean v/c of the links into the node), load over feeder capacity, and traffic emissions
over the reference. `Monitoring.step` is called once per interval by the world's SimPy
process, after traffic and energy, with the interval's allocation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.sparse import csr_matrix

from simcity.city.graph import City
from simcity.compute.bill import ComputeBill, bill_step
from simcity.config.devices import DeviceProfile, device_profile
from simcity.config.scenario import Scenario
from simcity.monitoring import incidents as inc
from simcity.monitoring import sensors
from simcity.monitoring.truth import TrueState

NUM_QUANTITIES = 3
# The sensor kind that sees each incident kind (accident, pollution, overload, scheduled).
SENSOR_FOR_INCIDENT = np.array(
    [sensors.TRAFFIC_COUNTER, sensors.AIR_QUALITY, sensors.ENERGY_METER, sensors.TRAFFIC_COUNTER]
)
# The sensor kind that reads each estimated quantity.
SENSOR_FOR_QUANTITY = np.array([sensors.TRAFFIC_COUNTER, sensors.ENERGY_METER, sensors.AIR_QUALITY])
# The quantity each incident kind disturbs in its node's readings (see `alarm_snr`).
QUANTITY_FOR_INCIDENT = np.array([0, 2, 1, 0])


class StepOutcome(NamedTuple):
    """What monitoring did over one interval: service, error and the compute bill."""

    damage: float
    num_new: int
    num_detected: int
    num_missed: int
    """Incidents that closed this interval without being detected."""
    num_open: int
    detection_delays_min: np.ndarray
    estimation_error: float
    """Mean absolute estimation error over nodes and quantities."""
    bill: ComputeBill
    units_used: float
    damage_by_node: np.ndarray
    """(N,) damage accrued over the interval by incidents at each node."""
    error_by_node: np.ndarray
    """(N,) mean absolute estimation error over the node's quantities."""


def neighbour_mean(city: City) -> csr_matrix:
    """(N, N) row-normalised undirected adjacency: row i averages over i's neighbours."""
    n, tail, head = city.num_nodes, city.link_tail, city.link_head
    adjacency = csr_matrix(
        (np.ones(2 * len(tail)), (np.r_[tail, head], np.r_[head, tail])), shape=(n, n)
    )
    adjacency.data[:] = 1.0  # parallel pairs count once
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return csr_matrix(adjacency.multiply(1.0 / np.maximum(degree, 1.0)[:, None]))


@dataclass
class Monitoring:
    """Sensors, incidents and estimates of one episode; advanced by `step`."""

    city: City
    scenario: Scenario
    rng: np.random.Generator
    device: DeviceProfile = field(init=False)
    installed: np.ndarray = field(init=False)  # (N, K) int
    up: np.ndarray = field(init=False)  # (N, K) int
    open: inc.Incidents = field(init=False)
    closed: list[inc.Incidents] = field(init=False)
    estimates: np.ndarray | None = field(init=False)  # (N, Q)
    recent_detections: np.ndarray = field(init=False)  # (N,) decayed count
    cut_factor: np.ndarray = field(init=False)  # (L,) capacity left by open accidents
    known_cut_factor: np.ndarray = field(init=False)  # (L,) the same, detected ones only
    neighbour_mean: csr_matrix = field(init=False)  # (N, N) row-normalised adjacency
    hotspot: np.ndarray = field(init=False)  # (N,) fixed risk factor, mean 1
    risk_history: np.ndarray = field(init=False)  # (N,) records' estimate of the hotspot
    unwatched: np.ndarray = field(init=False)  # (N,) expected undetected per unit rate, min
    anomaly: np.ndarray = field(init=False)  # (N, Q) CUSUM evidence of unexplained readings
    _sensor_rng: np.random.Generator = field(init=False, repr=False)
    _noise_rng: np.random.Generator = field(init=False, repr=False)
    _arrival_key: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n, cfg = self.city.num_nodes, self.scenario.sensors
        # Separate streams, so that policies facing the same seed meet the same arrivals.
        streams = self.rng.spawn(2)
        self._sensor_rng, self._noise_rng = streams
        # Arrivals (and their detection clocks) draw from a generator per interval, so
        # policies facing the same seed meet the same incidents even after their histories
        # part (`simcity.monitoring.incidents`, "Common random numbers").
        # Two draws, as when detections had a key of their own: the draws after it stay put.
        self._arrival_key = int(self.rng.integers(2**63, size=2)[0])
        # Fixed per city: the same dangerous junctions and weak feeders every episode.
        sigma = self.scenario.incidents.hotspot_sigma
        city_rng = np.random.default_rng([self.scenario.seed, 0x40757])
        self.hotspot = city_rng.lognormal(-0.5 * sigma**2, sigma, size=n)
        history = self.scenario.incidents.history_per_node
        counts = city_rng.poisson(self.hotspot * history)
        # Posterior mean under a Gamma(1, 1) prior on the factor: shrinks sparse records.
        self.risk_history = (counts + 1.0) / (history + 1.0)
        compute = self.scenario.compute
        self.device = device_profile(compute.device, compute.devices_file)
        self.installed = np.zeros((n, sensors.NUM_KINDS), dtype=np.int64)
        self.installed[:, sensors.TRAFFIC_COUNTER] = cfg.traffic_counters_per_node
        self.installed[:, sensors.AIR_QUALITY] = self.rng.random(n) < cfg.air_quality_share
        self.installed[:, sensors.ENERGY_METER] = cfg.energy_meters_per_node
        self.up = self.installed.copy()
        self.open = inc.Incidents.empty()
        self.closed = []
        self.estimates = None
        self.anomaly = np.zeros((n, NUM_QUANTITIES))
        self.recent_detections = np.zeros(n)
        mon = self.scenario.monitoring
        self.unwatched = np.full(
            n, 1.0 / (mon.report_per_min + mon.sensor_per_min + self._close_per_min)
        )
        self.cut_factor = np.ones(self.city.num_links)
        self.known_cut_factor = np.ones(self.city.num_links)
        self.neighbour_mean = neighbour_mean(self.city)

    @property
    def _close_per_min(self) -> float:
        """Rate at which an incident of mean duration closes by itself (1/min)."""
        return 1.0 / float(np.mean(self.scenario.incidents.mean_duration_min))

    @property
    def unwatched_max_min(self) -> float:
        """`unwatched` of a node never watched, with no sensors (its upper bound)."""
        return 1.0 / (self.scenario.monitoring.report_per_min + self._close_per_min)

    @property
    def sensors_up_share(self) -> np.ndarray:
        """(N, K) share of each kind's sensors that work."""
        return sensors.up_share(self.installed, self.up)

    def step(
        self,
        state: TrueState,
        allocation: np.ndarray,
        t0_min: float,
        t1_min: float,
        *,
        scheduled: list[tuple[int, float]],
        policy_flop: float,
        intensity_g_per_kwh: float,
    ) -> StepOutcome:
        """Advance sensors, incidents and estimates over [t0, t1) under ``allocation``."""
        cfg, mon = self.scenario.incidents, self.scenario.monitoring
        dt_min = t1_min - t0_min
        # Sensors fail and get repaired.
        self.up = sensors.step_sensors(
            self.installed,
            self.up,
            dt_min,
            self._sensor_rng,
            mtbf_h=self.scenario.sensors.mtbf_h,
            mttr_h=self.scenario.sensors.mttr_h,
        )
        up_share = self.sensors_up_share
        # New incidents: Poisson arrivals at the interval's rates, plus scheduled ones.
        new = self._arrivals(state, t0_min, t1_min, scheduled)
        self.open = inc.Incidents.concat(self.open, new)
        # Detection, response and damage.
        nbr = self.neighbour_mean @ allocation
        node, sensor = self.open.node, SENSOR_FOR_INCIDENT[self.open.kind]
        hazard = inc.detection_hazard_per_min(
            allocation[node],
            nbr[node],
            up_share[node, sensor],
            report_per_min=mon.report_per_min,
            sensor_per_min=mon.sensor_per_min,
            unit_per_min=mon.unit_per_min,
            spill=mon.spill,
        )
        before = self.open.damage
        outcome = inc.advance_incidents(
            self.open,
            hazard,
            t0_min,
            t1_min,
            response_damage_factor=cfg.response_damage_factor,
            response_duration_factor=cfg.response_duration_factor,
        )
        updated = outcome.incidents
        damage_by_node = np.bincount(
            updated.node, weights=updated.damage - before, minlength=self.city.num_nodes
        )
        self._update_unwatched(allocation, nbr, up_share, dt_min)
        delays = (updated.detected_min - updated.start_min)[outcome.newly_detected]
        missed = int((outcome.closed & ~updated.detected).sum())
        decay = 0.5 ** (dt_min / 120.0)
        detected_nodes = np.bincount(
            updated.node[outcome.newly_detected], minlength=self.city.num_nodes
        )
        self.recent_detections = self.recent_detections * decay + detected_nodes
        if outcome.closed.any():
            self.closed.append(updated.select(outcome.closed))
        self.open = updated.select(~outcome.closed)
        self.cut_factor = self._cuts(self.open.link >= 0)
        self.known_cut_factor = self._cuts((self.open.link >= 0) & self.open.detected)
        # What the operator now believes about every node.
        found = outcome.newly_detected
        # The operator puts past evidence at a node down to the incident just found there.
        self.anomaly[updated.node[found], QUANTITY_FOR_INCIDENT[updated.kind[found]]] = 0.0
        error_by_node = self._observe(state.quantities, allocation, up_share)
        units = float(allocation.sum())
        compute = self.scenario.compute
        bill = bill_step(
            device=self.device,
            analytics_flop_per_unit_min=compute.analytics_flop_per_unit_min,
            units=units,
            policy_flop_per_decision=policy_flop,
            decisions=1,
            dt_min=dt_min,
            min_gpus=compute.min_gpus,
            pue=compute.pue,
            intensity_g_per_kwh=intensity_g_per_kwh,
            price_per_kwh=compute.price_per_kwh,
            carbon_price_per_t=compute.carbon_price_per_t,
        )
        return StepOutcome(
            damage=outcome.damage,
            num_new=new.num,
            num_detected=int(outcome.newly_detected.sum()),
            num_missed=missed,
            num_open=self.open.num,
            detection_delays_min=delays,
            estimation_error=float(error_by_node.mean()),
            bill=bill,
            units_used=units,
            damage_by_node=damage_by_node,
            error_by_node=error_by_node,
        )

    def _arrivals(
        self, state: TrueState, t0_min: float, t1_min: float, scheduled: list[tuple[int, float]]
    ) -> inc.Incidents:
        cfg, city = self.scenario.incidents, self.city
        rng = self._interval_rng(self._arrival_key, t0_min)
        links, accident_t = inc.sample_arrivals(state.accident_rate_per_h, t0_min, t1_min, rng)
        polluted, pollution_t = inc.sample_arrivals(state.pollution_rate_per_h, t0_min, t1_min, rng)
        overloaded, overload_t = inc.sample_arrivals(state.overload_rate_per_h, t0_min, t1_min, rng)
        kind = np.concatenate(
            [
                np.full(len(links), inc.ACCIDENT),
                np.full(len(polluted), inc.POLLUTION),
                np.full(len(overloaded), inc.GRID_OVERLOAD),
            ]
        )
        node = np.concatenate([city.link_head[links], polluted, overloaded])
        link = np.concatenate([links, np.full(len(polluted) + len(overloaded), -1)])
        start = np.concatenate([accident_t, pollution_t, overload_t])
        sigma = cfg.severity_sigma
        severity = (
            rng.lognormal(-0.5 * sigma**2, sigma, size=len(kind)) if sigma else np.ones(len(kind))
        )
        mean_duration = np.asarray(cfg.mean_duration_min)[kind]
        duration = rng.exponential(1.0, size=len(kind)) * mean_duration
        damage_rate = np.asarray(cfg.damage_per_min)[kind] * severity
        new = inc.Incidents(
            kind=kind.astype(np.int64),
            node=node.astype(np.int64),
            link=link.astype(np.int64),
            severity=severity,
            start_min=start,
            end_min=start + duration,
            damage_per_min=damage_rate,
            detected_min=np.full(len(kind), np.nan),
            damage=np.zeros(len(kind)),
            clock=rng.exponential(1.0, size=len(kind)),
        )
        if not scheduled:
            return new
        planned = [cfg.scheduled[i] for i, _ in scheduled]
        starts = np.array([t for _, t in scheduled])
        nodes = np.array([self.city.nearest_node(s.lon, s.lat) for s in planned], dtype=np.int64)
        kinds = np.array([inc.INCIDENT_TYPES.index(s.kind) for s in planned], dtype=np.int64)
        extra = inc.Incidents(
            kind=kinds,
            node=nodes,
            link=np.full(len(planned), -1, dtype=np.int64),
            severity=np.array([s.severity for s in planned]),
            start_min=starts,
            end_min=starts + np.array([s.duration_min for s in planned]),
            damage_per_min=np.array([s.damage_per_min * s.severity for s in planned]),
            detected_min=np.full(len(planned), np.nan),
            damage=np.zeros(len(planned)),
            clock=rng.exponential(1.0, size=len(planned)),
        )
        return inc.Incidents.concat(new, extra)

    @staticmethod
    def _interval_rng(key: int, t0_min: float) -> np.random.Generator:
        return np.random.default_rng([key, round(t0_min * 1000)])

    def _cuts(self, accidents: np.ndarray) -> np.ndarray:
        count = np.bincount(self.open.link[accidents], minlength=self.city.num_links)
        # Two accidents on a link close most of it; more add nothing (traffic still moves).
        return self.scenario.incidents.accident_capacity_factor ** np.minimum(count, 2)

    def _update_unwatched(
        self, allocation: np.ndarray, nbr: np.ndarray, up_share: np.ndarray, dt_min: float
    ) -> None:
        """Advance the search belief `unwatched` over an interval of ``dt_min``.

        An operator who knows the detection model but not where incidents are expects
        ``r u_i`` undetected incidents at a node with arrival rate r, where ``u_i`` follows
        ``du/dt = 1 - k_i u`` with ``k_i`` = detection hazard (sensors averaged over the
        incident kinds, monitoring with spill) + the closing rate of a mean incident; it is
        integrated exactly over the interval. Detections do not change it: Poisson
        incidents found and not found are independent.
        """
        mon = self.scenario.monitoring
        up = up_share[:, SENSOR_FOR_INCIDENT[:3]].mean(axis=1)  # (N,)
        k = (
            inc.detection_hazard_per_min(
                allocation,
                nbr,
                up,
                report_per_min=mon.report_per_min,
                sensor_per_min=mon.sensor_per_min,
                unit_per_min=mon.unit_per_min,
                spill=mon.spill,
            )
            + self._close_per_min
        )
        decay = np.exp(-k * dt_min)
        self.unwatched = self.unwatched * decay + (1.0 - decay) / k

    def _observe(
        self, normal: np.ndarray, allocation: np.ndarray, up_share: np.ndarray
    ) -> np.ndarray:
        """Update the estimates and the anomaly evidence; return the error per node (N,).

        The sensors read ``normal`` (the incident-free quantities, which the operator's
        model of the city predicts) plus each open incident's disturbance (`alarm_snr`).
        The residual of a reading against the prediction and the disturbance of the
        incidents already known, in the reading's own noise SDs, feeds a CUSUM per node and
        quantity (`simcity.monitoring.sensors.cusum`, slack ``alarm_snr / 2``).
        """
        mon = self.scenario.monitoring
        n = self.city.num_nodes
        noise_sd = mon.noise_sd * np.maximum(normal.mean(axis=0), 1e-3)  # (Q,)
        quantity = QUANTITY_FOR_INCIDENT[self.open.kind]
        shift = mon.alarm_snr * self.open.severity * noise_sd[quantity]  # (I,)

        def per_node(mask: np.ndarray) -> np.ndarray:
            """(N, Q) summed shift of the open incidents where ``mask`` holds."""
            out = np.zeros(n * NUM_QUANTITIES)
            np.add.at(out, (self.open.node * NUM_QUANTITIES + quantity)[mask], shift[mask])
            return out.reshape(n, NUM_QUANTITIES)

        disturbance, known = per_node(np.ones(self.open.num, bool)), per_node(self.open.detected)
        truth = normal + disturbance
        if self.estimates is None:
            # The operator starts from city-wide averages.
            self.estimates = np.broadcast_to(truth.mean(axis=0), truth.shape).copy()
        seeing = up_share[:, SENSOR_FOR_QUANTITY] > 0  # (N, Q)
        self.estimates = sensors.observe(
            truth,
            self.estimates,
            seeing,
            allocation,
            self._noise_rng,
            noise_sd=noise_sd,
            units_halving_noise=mon.units_halving_noise,
        )
        if mon.alarm_snr > 0 and mon.noise_sd > 0:
            spread = sensors.reading_sd(allocation, noise_sd, mon.units_halving_noise)
            unexplained = self.estimates - normal - known
            self.anomaly = sensors.cusum(
                self.anomaly, unexplained / spread, seeing, slack=0.5 * mon.alarm_snr
            )
        return np.abs(self.estimates - truth).mean(axis=1)

    def all_incidents(self) -> inc.Incidents:
        """Every incident of the episode so far, closed and open."""
        table = inc.Incidents.empty()
        for part in [*self.closed, self.open]:
            table = inc.Incidents.concat(table, part)
        return table
