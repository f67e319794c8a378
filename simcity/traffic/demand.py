"""Origin-destination demand: gravity model, time-of-day profile and crowd events.

Z zones, N nodes. The base OD matrix is the base hour's demand (veh/h) from home-end
zones (population) to work-end zones (jobs); the day profile scales it, with the morning
peak running home-to-work and the evening peak back. `CityDemand` holds one city's
demand for a scenario: its base matrix, its events and where trips end at nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple
from weakref import WeakKeyDictionary

import numpy as np

from simcity.arrays import read_only
from simcity.city.generators import to_km
from simcity.city.graph import City
from simcity.config.scenario import DayProfile, EventConfig, Scenario


def zone_catchment(city: City) -> np.ndarray:
    """For every node, the position (in zone order) of its nearest zone (read-only,
    memoised per city)."""
    cached = _CATCHMENTS.get(city)
    if cached is None:
        cached = _CATCHMENTS[city] = read_only(_zone_catchment(city))
    return cached


def _zone_catchment(city: City) -> np.ndarray:
    from scipy.spatial import cKDTree

    x_km, y_km = to_km(city.lon, city.lat, float(city.lon.mean()), float(city.lat.mean()))
    zone_xy = np.stack([x_km[city.zone_index], y_km[city.zone_index]], axis=1)
    _, nearest = cKDTree(zone_xy).query(np.stack([x_km, y_km], axis=1))
    return np.asarray(nearest, dtype=np.int64)


def zone_free_flow_times(city: City) -> np.ndarray:
    """Shortest free-flow travel times between zones, minutes (Z x Z, read-only).

    Memoised per city (a `City` is frozen): the all-zones search is most of a reset's
    work on a big city, and every episode's World asks for the same matrix.
    """
    cached = _ZONE_TIMES.get(city)
    if cached is None:
        cached = _ZONE_TIMES[city] = read_only(_zone_free_flow_times(city))
    return cached


_ZONE_TIMES: WeakKeyDictionary[City, np.ndarray] = WeakKeyDictionary()
_CATCHMENTS: WeakKeyDictionary[City, np.ndarray] = WeakKeyDictionary()


def _zone_free_flow_times(city: City) -> np.ndarray:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    weights = csr_matrix(
        (city.free_flow_time_min, (city.link_tail, city.link_head)),
        shape=(city.num_nodes, city.num_nodes),
    )
    times = dijkstra(weights, indices=city.zone_index)
    return np.asarray(times[:, city.zone_index])


def gravity_od(
    production: np.ndarray,
    attraction: np.ndarray,
    times_min: np.ndarray,
    *,
    total_veh_h: float,
    decay_per_min: float,
) -> np.ndarray:
    """Singly constrained gravity model: trips leave zones in proportion to production.

    ``T_ij = total * P_i / sum(P) * A_j f(c_ij) / sum_k A_k f(c_ik)``, f(c) = exp(-decay c),
    no trips within a zone or between unconnected zones.

    >>> od = gravity_od(np.array([1.0, 1.0]), np.array([1.0, 3.0]),
    ...                 np.array([[0, 10.0], [10.0, 0]]), total_veh_h=100, decay_per_min=0.1)
    >>> od.round(1).tolist()
    [[0.0, 50.0], [50.0, 0.0]]
    """
    impedance = np.exp(-decay_per_min * np.where(np.isfinite(times_min), times_min, 0.0))
    impedance = np.where(np.isfinite(times_min), impedance, 0.0)
    np.fill_diagonal(impedance, 0.0)
    weight = attraction[None, :] * impedance  # (Z, Z)
    row_sum = weight.sum(axis=1, keepdims=True)
    shares = np.divide(weight, row_sum, out=np.zeros_like(weight), where=row_sum > 0)
    produced = production * np.where(row_sum[:, 0] > 0, 1.0, 0.0)
    if produced.sum() <= 0:
        return np.zeros_like(weight)
    return total_veh_h * (produced / produced.sum())[:, None] * shares


def city_gravity_od(city: City, *, total_veh_h: float, decay_per_min: float) -> np.ndarray:
    """The gravity model on a city: each zone speaks for the nodes nearest to it."""
    catchment = zone_catchment(city)
    production = np.bincount(catchment, weights=city.population, minlength=city.num_zones)
    attraction = np.bincount(catchment, weights=city.jobs, minlength=city.num_zones)
    return gravity_od(
        production,
        attraction,
        zone_free_flow_times(city),
        total_veh_h=total_veh_h,
        decay_per_min=decay_per_min,
    )


def _bump(hour: float, centre_h: float, width_h: float) -> float:
    distance = (hour - centre_h + 12.0) % 24.0 - 12.0
    return float(np.exp(-0.5 * (distance / width_h) ** 2))


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


class DayShares(NamedTuple):
    """Demand level (share of the base hour) and the direction mix at one hour."""

    level: float
    to_work: float
    to_home: float


def day_shares(profile: DayProfile, hour: float) -> DayShares:
    """Demand level and direction mix at a local hour (0-24).

    >>> s = day_shares(DayProfile(), 8.0)
    >>> round(s.level, 2), s.to_work > s.to_home
    (1.0, True)
    """
    day = _sigmoid((hour - 6.0) / 0.7) * _sigmoid((21.5 - hour) / 1.0)
    am = _bump(hour, profile.am_peak_h, profile.peak_width_h)
    pm = _bump(hour, profile.pm_peak_h, profile.peak_width_h)
    level = profile.night_level + (profile.midday_level - profile.night_level) * day
    level += (profile.am_level - level) * am + (profile.pm_level - level) * pm
    to_work, to_home = 0.5 + 0.4 * (am - pm), 0.5 - 0.4 * (am - pm)
    return DayShares(max(level, 0.0), to_work, to_home)


def od_at(base_od: np.ndarray, profile: DayProfile, hour: float) -> np.ndarray:
    """Zone-to-zone demand (veh/h) at a local hour, from the base-hour matrix."""
    shares = day_shares(profile, hour)
    return shares.level * (shares.to_work * base_od + shares.to_home * base_od.T)


def event_od(
    event: EventConfig,
    event_zone: int,
    zone_weights: np.ndarray,
    hour: float,
) -> np.ndarray:
    """Extra demand (veh/h, Z x Z) of a crowd event at a local hour.

    Vehicles (attendees x car share) arrive uniformly over the window before the start,
    from zones in proportion to ``zone_weights``, and leave the same way after the end.
    """
    num_zones = len(zone_weights)
    od = np.zeros((num_zones, num_zones))
    vehicles = event.attendees * event.car_share
    origin_share = zone_weights / zone_weights.sum() if zone_weights.sum() > 0 else zone_weights
    if event.start_h - event.arrival_window_h <= hour < event.start_h:
        od[:, event_zone] += vehicles / event.arrival_window_h * origin_share
    if event.end_h <= hour < event.end_h + event.departure_window_h:
        od[event_zone, :] += vehicles / event.departure_window_h * origin_share
    od[event_zone, event_zone] = 0.0
    return od


@dataclass(frozen=True)
class CityDemand:
    """A city's demand under a scenario: the base hour, the day profile and its events."""

    base_od: np.ndarray  # (Z, Z) base hour, veh/h
    profile: DayProfile
    events: tuple[EventConfig, ...]
    event_zone: tuple[int, ...]  # each event's zone (position in zone order)
    zone_population: np.ndarray  # (Z,) residents nearest each zone
    catchment: np.ndarray  # (N,) each node's zone
    arrival_share: np.ndarray  # (N,) each node's share of the trips ending at its zone

    def od_at_hour(self, hour: float) -> np.ndarray:
        """Zone-to-zone demand (veh/h, Z x Z) at a local hour, events included."""
        od = od_at(self.base_od, self.profile, hour)
        for event, zone in zip(self.events, self.event_zone, strict=True):
            od = od + event_od(event, zone, self.zone_population, hour)
        return od

    def arrivals_veh_h(self, od_veh_h: np.ndarray) -> np.ndarray:
        """Trips ending at each node (N,) under ``od_veh_h``: its share of its zone's."""
        arrivals_zone_veh_h = od_veh_h.sum(axis=0)  # (Z,)
        return arrivals_zone_veh_h[self.catchment] * self.arrival_share


def city_demand(city: City, scenario: Scenario) -> CityDemand:
    """The `CityDemand` of a city under a scenario (a TNTP trips table or the gravity model).

    Trips ending at a zone end at its catchment's nodes in proportion to residents + jobs.
    """
    traffic = scenario.traffic
    if traffic.demand == "tntp":
        assert city.od_veh_h is not None
        base_od = traffic.demand_scale * np.asarray(city.od_veh_h, dtype=float)
    else:
        od = city_gravity_od(
            city, total_veh_h=traffic.base_trips_veh_h, decay_per_min=traffic.gravity_decay_per_min
        )
        base_od = traffic.demand_scale * od
    catchment = zone_catchment(city)
    weight = city.population + city.jobs + 1e-9
    zone_weight = np.bincount(catchment, weights=weight, minlength=city.num_zones)
    events = tuple(scenario.events)
    return CityDemand(
        base_od=read_only(base_od),
        profile=traffic.profile,
        events=events,
        event_zone=tuple(city.nearest_node(e.lon, e.lat, zones_only=True) for e in events),
        zone_population=read_only(
            np.bincount(catchment, weights=city.population, minlength=city.num_zones)
        ),
        catchment=read_only(catchment),
        arrival_share=read_only(weight / zone_weight[catchment]),
    )
