"""The interval's true per-node quantities and incident rates, from traffic and load.

Pure functions of the world's state: the monitoring draws its incidents from these
rates, the clairvoyant reference reads them, and nothing here changes the world. N nodes,
L links, Q = 3 quantities per node (congestion, load ratio, emissions ratio).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from simcity.city.graph import City
from simcity.config.scenario import Scenario
from simcity.monitoring import incidents as inc


class TrueState(NamedTuple):
    """The interval's true per-node quantities, and the incident rates they imply."""

    quantities: np.ndarray  # (N, Q) congestion, load ratio, emissions ratio
    accident_rate_per_h: np.ndarray  # (L,)
    pollution_rate_per_h: np.ndarray  # (N,)
    overload_rate_per_h: np.ndarray  # (N,)


def true_state(
    city: City,
    scenario: Scenario,
    flows_veh_h: np.ndarray,
    times_min: np.ndarray,
    capacity_veh_h: np.ndarray,
    load_kw: np.ndarray,
    feeder_kw: np.ndarray,
    hotspot: np.ndarray,
) -> TrueState:
    """Per-node true quantities and incident rates from traffic, load and hotspots (N,)."""
    cfg = scenario.incidents
    vc = flows_veh_h / capacity_veh_h
    quantities, emissions_g_h = _node_terms(
        city, scenario, flows_veh_h, times_min, capacity_veh_h, load_kw, feeder_kw
    )
    return TrueState(
        quantities,
        inc.accident_rate_per_h(
            flows_veh_h,
            city.length_km,
            vc,
            per_mveh_km=cfg.accident_per_mveh_km,
            congestion_gain=cfg.congestion_gain,
        )
        * hotspot[city.link_head],
        inc.pollution_rate_per_h(
            emissions_g_h, per_h=cfg.pollution_per_h, reference_g_h=cfg.reference_emissions_g_h
        )
        * hotspot,
        inc.overload_rate_per_h(
            load_kw, feeder_kw, per_h=cfg.overload_per_mw_h, gain=cfg.overload_gain
        )
        * load_kw
        / 1000.0
        * hotspot,
    )


def node_quantities(
    city: City,
    scenario: Scenario,
    flows_veh_h: np.ndarray,
    times_min: np.ndarray,
    capacity_veh_h: np.ndarray,
    load_kw: np.ndarray,
    feeder_kw: np.ndarray,
) -> np.ndarray:
    """Per-node congestion, load ratio and emissions ratio (N, 3) from traffic and load
    (`true_state`'s quantities without its incident rates: the operator's prediction)."""
    args = (city, scenario, flows_veh_h, times_min, capacity_veh_h, load_kw, feeder_kw)
    return _node_terms(*args)[0]


def _node_terms(
    city: City,
    scenario: Scenario,
    flows_veh_h: np.ndarray,
    times_min: np.ndarray,
    capacity_veh_h: np.ndarray,
    load_kw: np.ndarray,
    feeder_kw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The quantities (N, 3) and the emissions (N,) g/h they are a ratio of."""
    cfg = scenario.incidents
    n = city.num_nodes
    vc = flows_veh_h / capacity_veh_h
    indegree = np.maximum(np.bincount(city.link_head, minlength=n), 1)
    congestion = np.bincount(city.link_head, weights=vc, minlength=n) / indegree
    slowdown = times_min / city.free_flow_time_min
    emissions_g_h = np.bincount(
        city.link_head,
        weights=flows_veh_h * city.length_km * cfg.emissions_g_per_veh_km * slowdown,
        minlength=n,
    )
    emissions_ratio = emissions_g_h / cfg.reference_emissions_g_h
    quantities = np.stack([congestion, load_kw / feeder_kw, emissions_ratio], axis=1)
    return quantities, emissions_g_h
