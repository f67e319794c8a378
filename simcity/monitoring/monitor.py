"""Monitoring of a world: sensors, incidents, the operator's estimates, the compute bill.

N nodes, L links, K = 3 sensor kinds, Q = 3 estimated quantities per node: congestion
(mean v/c of the links into the node), load over feeder capacity, and traffic emissions
over the reference. `start_monitoring` sets up an episode's `MonitoringState`;
`step_monitoring` is its pure step over one interval (the world calls it after traffic
and energy, with the interval's allocation): the state is a frozen value whose arrays are
read-only, and each step returns a new one. The random streams are the caller's: a key
under which each interval's numbers are counters, one per kind of draw and site
(`simcity.monitoring.streams`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from simcity.arrays import read_only
from simcity.city.graph import City
from simcity.compute.bill import ComputeBill, PolicyCompute, bill_compute
from simcity.config.devices import DeviceProfile, device_profile
from simcity.config.scenario import Scenario
from simcity.monitoring import incidents as inc
from simcity.monitoring import sensors
from simcity.monitoring import streams as rand
from simcity.monitoring.arrivals import arrivals
from simcity.monitoring.beliefs import observe, step_unwatched
from simcity.monitoring.sensors import NUM_QUANTITIES as NUM_QUANTITIES
from simcity.monitoring.sensors import QUANTITY_FOR_INCIDENT as QUANTITY_FOR_INCIDENT
from simcity.monitoring.sensors import SENSOR_FOR_INCIDENT as SENSOR_FOR_INCIDENT
from simcity.monitoring.sensors import SENSOR_FOR_QUANTITY as SENSOR_FOR_QUANTITY
from simcity.monitoring.truth import TrueState

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix


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
    from scipy.sparse import csr_matrix

    n, tail, head = city.num_nodes, city.link_tail, city.link_head
    adjacency = csr_matrix(
        (np.ones(2 * len(tail)), (np.r_[tail, head], np.r_[head, tail])), shape=(n, n)
    )
    adjacency.data[:] = 1.0  # parallel pairs count once
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return csr_matrix(adjacency.multiply(1.0 / np.maximum(degree, 1.0)[:, None]))


@dataclass(frozen=True)
class MonitoringSetup:
    """What stays fixed through an episode: the sensors installed, the risk factors."""

    city: City
    scenario: Scenario
    device: DeviceProfile
    installed: np.ndarray  # (N, K) int
    hotspot: np.ndarray  # (N,) fixed risk factor, mean 1
    risk_history: np.ndarray  # (N,) records' estimate of the hotspot
    neighbour_mean: csr_matrix  # (N, N) row-normalised adjacency
    close_per_min: float  # rate at which an incident of mean duration closes by itself

    @property
    def unwatched_max_min(self) -> float:
        """`MonitoringState.unwatched` of a node never watched, with no sensors (its bound)."""
        return 1.0 / (self.scenario.monitoring.report_per_min + self.close_per_min)


class MonitoringStreams(NamedTuple):
    """The random streams monitoring draws from, owned by the world: the episode's Philox
    key; an interval's numbers are the counters under it (`simcity.monitoring.streams`)."""

    key: np.ndarray  # (2,) uint64
    scratch: np.random.Philox  # its whole state is set before each interval's draws

    @staticmethod
    def from_rng(rng: np.random.Generator) -> MonitoringStreams:
        """The streams keyed by two draws of ``rng``."""
        key = rand.episode_key(rng)
        return MonitoringStreams(key, np.random.Philox(key=key))


@dataclass(frozen=True)
class MonitoringState:
    """Sensors, incidents and the operator's beliefs after an interval (read-only arrays)."""

    setup: MonitoringSetup
    up: np.ndarray  # (N, K) int, working sensors
    sensors_up_share: np.ndarray  # (N, K) share of each kind's sensors that work
    open: inc.Incidents
    closed: tuple[inc.Incidents, ...]  # one table per interval in which some closed
    estimates: np.ndarray | None  # (N, Q); None before the first reading
    recent_detections: np.ndarray  # (N,) decayed count
    cut_factor: np.ndarray  # (L,) capacity left by open accidents
    known_cut_factor: np.ndarray  # (L,) the same, detected ones only
    unwatched: np.ndarray  # (N,) expected undetected per unit rate, min
    anomaly: np.ndarray  # (N, Q) CUSUM evidence of unexplained readings

    @property
    def installed(self) -> np.ndarray:
        return self.setup.installed

    @property
    def hotspot(self) -> np.ndarray:
        return self.setup.hotspot

    @property
    def risk_history(self) -> np.ndarray:
        return self.setup.risk_history

    @property
    def neighbour_mean(self) -> csr_matrix:
        return self.setup.neighbour_mean

    @property
    def device(self) -> DeviceProfile:
        return self.setup.device

    @property
    def unwatched_max_min(self) -> float:
        return self.setup.unwatched_max_min

    def all_incidents(self) -> inc.Incidents:
        """Every incident of the episode so far, closed and open."""
        table = inc.Incidents.empty()
        for part in [*self.closed, self.open]:
            table = inc.Incidents.concat(table, part)
        return table


class MonitoringInputs(NamedTuple):
    """What an interval's monitoring depends on besides its state."""

    truth: TrueState  # the interval's true quantities and incident rates
    allocation: np.ndarray  # (N,) monitoring units
    t0_min: float
    t1_min: float
    scheduled: tuple[tuple[int, float], ...]  # planned incidents due: (index, start minute)
    policy: PolicyCompute  # what the decision that made the allocation costs to run
    intensity_g_per_kwh: float  # the data centre's grid now
    fleet_on: bool = True  # False: a compute budget switched the analytics fleet off
    tier_units: np.ndarray | None = None  # (N, T) units per analytics tier; None: T = 1
    predicted: np.ndarray | None = None  # (N, Q) the operator's prediction; None: truth's


def effective_units(
    allocation: np.ndarray, tier_units: np.ndarray | None, gains: tuple[float, ...]
) -> np.ndarray:
    """(N,) units as a unit of the default tier counts them: ``sum_t gain_t * units_t``;
    ``allocation`` itself without tiers (``tier_units`` None), bit for bit.

    >>> effective_units(np.zeros(2), np.array([[1.0, 2.0], [0.0, 0.5]]), (1.0, 4.0)).tolist()
    [9.0, 2.0]
    """
    if tier_units is None:
        return allocation
    return tier_units @ np.asarray(gains, dtype=np.float64)


def start_monitoring(
    city: City, scenario: Scenario, rng: np.random.Generator
) -> tuple[MonitoringState, MonitoringStreams]:
    """An episode's monitoring before its first interval, and its random streams."""
    n, cfg = city.num_nodes, scenario.sensors
    # Every draw of the episode is a counter under this key, one substream per kind of
    # draw, site and interval: policies facing the same seed meet the same incidents,
    # failures and noise even after their histories part (`simcity.monitoring.streams`).
    streams = MonitoringStreams.from_rng(rng)
    # Fixed per city: the same dangerous junctions, weak feeders and air-quality stations
    # every episode (the scenario's seed, not the episode's).
    sigma = scenario.incidents.hotspot_sigma
    city_rng = np.random.default_rng([scenario.seed, 0x40757])
    hotspot = city_rng.lognormal(-0.5 * sigma**2, sigma, size=n)
    history = scenario.incidents.history_per_node
    counts = city_rng.poisson(hotspot * history)
    # Posterior mean under a Gamma(1, 1) prior on the factor: shrinks sparse records.
    risk_history = (counts + 1.0) / (history + 1.0)
    compute = scenario.compute
    installed = np.zeros((n, sensors.NUM_KINDS), dtype=np.int64)
    installed[:, sensors.TRAFFIC_COUNTER] = cfg.traffic_counters_per_node
    # Stations are installed per city, like its hotspots: the same ones every day.
    installed[:, sensors.AIR_QUALITY] = city_rng.random(n) < cfg.air_quality_share
    installed[:, sensors.ENERGY_METER] = cfg.energy_meters_per_node
    setup = MonitoringSetup(
        city=city,
        scenario=scenario,
        device=device_profile(compute.device, compute.devices_file),
        installed=read_only(installed),
        hotspot=read_only(hotspot),
        risk_history=read_only(risk_history),
        neighbour_mean=neighbour_mean(city),
        close_per_min=1.0 / float(np.mean(scenario.incidents.mean_duration_min)),
    )
    mon = scenario.monitoring
    unwatched = 1.0 / (mon.report_per_min + mon.sensor_per_min + setup.close_per_min)
    state = MonitoringState(
        setup=setup,
        up=installed.copy(),
        sensors_up_share=sensors.up_share(installed, installed),
        open=inc.Incidents.empty(),
        closed=(),
        estimates=None,
        recent_detections=np.zeros(n),
        cut_factor=np.ones(city.num_links),
        known_cut_factor=np.ones(city.num_links),
        unwatched=np.full(n, unwatched),
        anomaly=np.zeros((n, NUM_QUANTITIES)),
    )
    return read_only_state(state), streams


def step_monitoring(
    state: MonitoringState, inputs: MonitoringInputs, streams: MonitoringStreams
) -> tuple[MonitoringState, StepOutcome]:
    """Advance sensors, incidents and estimates over [t0, t1) under the allocation."""
    setup, allocation = state.setup, inputs.allocation
    scenario, city = setup.scenario, setup.city
    cfg, mon = scenario.incidents, scenario.monitoring
    t0_min, t1_min = inputs.t0_min, inputs.t1_min
    dt_min = t1_min - t0_min
    words = rand.interval_words(streams.key, t0_min, layout(setup), streams.scratch)
    # Sensors fail and get repaired.
    up = sensors.step_sensors(
        setup.installed,
        state.up,
        dt_min,
        rand.unit(words.sensor).reshape((2, *setup.installed.shape)),
        mtbf_h=scenario.sensors.mtbf_h,
        mttr_h=scenario.sensors.mttr_h,
    )
    up_share = sensors.up_share(setup.installed, up)
    # New incidents: Poisson arrivals at the interval's rates, plus scheduled ones.
    new = arrivals(city, scenario, inputs.truth, t0_min, t1_min, inputs.scheduled, words)
    open_ = inc.Incidents.concat(state.open, new)
    # Detection, response and damage (allocation: capacity, billed; the tiers' gains
    # turn it into what detection and readings see).
    tiers = scenario.compute.tiers
    seen = effective_units(allocation, inputs.tier_units, tuple(t.hazard_gain for t in tiers))
    read = effective_units(allocation, inputs.tier_units, tuple(t.noise_gain for t in tiers))
    nbr = setup.neighbour_mean @ seen
    node, sensor = open_.node, SENSOR_FOR_INCIDENT[open_.kind]
    hazard = inc.detection_hazard_per_min(
        seen[node],
        nbr[node],
        up_share[node, sensor],
        report_per_min=mon.report_per_min,
        sensor_per_min=mon.sensor_per_min,
        unit_per_min=mon.unit_per_min,
        spill=mon.spill,
    )
    outcome = inc.advance_incidents(
        open_,
        hazard,
        t0_min,
        t1_min,
        response_damage_factor=cfg.response_damage_factor,
        response_duration_factor=cfg.response_duration_factor,
    )
    updated = outcome.incidents
    damage_by_node = np.bincount(
        updated.node, weights=updated.damage - open_.damage, minlength=city.num_nodes
    )
    unwatched = step_unwatched(
        state.unwatched, seen, nbr, up_share, dt_min, mon, setup.close_per_min
    )
    delays = (updated.detected_min - updated.start_min)[outcome.newly_detected]
    missed = int((outcome.closed & ~updated.detected).sum())
    decay = 0.5 ** (dt_min / 120.0)
    detected_nodes = np.bincount(updated.node[outcome.newly_detected], minlength=city.num_nodes)
    recent = state.recent_detections * decay + detected_nodes
    closed = state.closed
    if outcome.closed.any():
        closed = (*closed, updated.select(outcome.closed))
    still_open = updated.select(~outcome.closed)
    accidents = still_open.link >= 0
    # What the operator now believes about every node.
    found = outcome.newly_detected
    anomaly = state.anomaly.copy()
    # The operator puts past evidence at a node down to the incident just found there.
    anomaly[updated.node[found], QUANTITY_FOR_INCIDENT[updated.kind[found]]] = 0.0
    beliefs = observe(
        inputs.truth.quantities,
        still_open,
        state.estimates,
        anomaly,
        read,
        up_share,
        rand.normal(rand.unit(words.noise)).reshape(len(setup.installed), NUM_QUANTITIES),
        mon,
        inputs.predicted,
    )
    units = float(allocation.sum())
    bill = bill_compute(
        scenario.compute,
        setup.device,
        inputs.policy,
        units=units,
        dt_min=dt_min,
        intensity_g_per_kwh=inputs.intensity_g_per_kwh,
        fleet_on=inputs.fleet_on,
    )
    after = MonitoringState(
        setup=setup,
        up=up,
        sensors_up_share=up_share,
        open=still_open,
        closed=closed,
        estimates=beliefs.estimates,
        recent_detections=recent,
        cut_factor=_cuts(still_open, accidents, scenario, city.num_links),
        known_cut_factor=_cuts(
            still_open, accidents & still_open.detected, scenario, city.num_links
        ),
        unwatched=unwatched,
        anomaly=beliefs.anomaly,
    )
    return read_only_state(after), StepOutcome(
        damage=outcome.damage,
        num_new=new.num,
        num_detected=int(outcome.newly_detected.sum()),
        num_missed=missed,
        num_open=still_open.num,
        detection_delays_min=read_only(delays),
        estimation_error=float(beliefs.error_by_node.mean()),
        bill=bill,
        units_used=units,
        damage_by_node=read_only(damage_by_node),
        error_by_node=read_only(beliefs.error_by_node),
    )


def layout(setup: MonitoringSetup) -> rand.Layout:
    """The sites of each kind of draw in an interval's block (fixed for the episode)."""
    n, links = setup.city.num_nodes, setup.city.num_links
    planned = len(setup.scenario.incidents.scheduled)
    return rand.Layout(links + 2 * n, planned, 2 * setup.installed.size, n * NUM_QUANTITIES)


def _cuts(
    incidents: inc.Incidents, accidents: np.ndarray, scenario: Scenario, num_links: int
) -> np.ndarray:
    """(L,) capacity left on each link by the ``accidents`` (a mask over ``incidents``)."""
    count = np.bincount(incidents.link[accidents], minlength=num_links)
    # Two accidents on a link close most of it; more add nothing (traffic still moves).
    return scenario.incidents.accident_capacity_factor ** np.minimum(count, 2)


def read_only_state(state: MonitoringState) -> MonitoringState:
    """``state`` with every array it holds made read-only (in place; returns it).

    Closed tables but the latest are taken to be read-only already (each was when added).
    """
    arrays = [state.up, state.sensors_up_share, state.recent_detections, state.cut_factor]
    arrays.append(state.known_cut_factor)
    arrays += [state.unwatched, state.anomaly]
    if state.estimates is not None:
        arrays.append(state.estimates)
    for table in (state.open, *state.closed[-1:]):
        arrays += vars(table).values()
    for array in arrays:
        array.setflags(write=False)
    return state
