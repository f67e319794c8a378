"""The classical baselines ``search`` and ``whittle``: optimal search and a Whittle-index
rule on the posterior belief, from the observation (`agents.policies.search` has the math).

N nodes, F node features, K = 3 incident kinds that arrive at random (accident, pollution,
grid overload).

The belief (`SearchModel.value`): the ``posterior`` baseline's, in money. Its shape over
the nodes is the posterior weights exactly (`agents.policies.baselines.posterior_weights`:
expected rates from the estimates, each kind scaled to sum 1, times the records' risk
factor, the recent detections, the evidence ``exp(SEARCH_GAIN S)`` and the ``unwatched``
belief). Its level, which only the comparison with the price of a unit uses, is the
expected value of the city's undetected incidents, ``sum_ik r_ik u_i L_i v_k``: the
arrival rates ``r_ik`` the estimates imply under the scenario's own rate model
(`simcity.monitoring.truth`), with the city's static figures an operator knows (capacity x
length of the links into a node, its feeder rating) and the records' risk factor; ``u_i``
the ``unwatched`` belief in minutes; ``L_i`` the evidence; finding an incident of kind k
now is worth ``v_k = D_k (1 - f_damage f_duration) tau_k``, its damage rate (mean severity
1) over its mean remaining time (durations are exponential), cut by the response. Those
absolute rates do not make a good shape: an overload's rate is exponential in a noisy load
ratio, so the estimates overstate overloads (5 times the true rate at 10:15 on a downtown
validation day), and search on them cost $4.8k a day more than on the posterior shape
(downtown, validation seeds 500-504).

``search``: Koopman's allocation (`agents.policies.search.water_fill`) of the interval's
budget ``B`` with ``w_i exp(-b_i dt)`` (what the hazard ``b_i`` without units would find
anyway is not the units' gain) and ``a_i = unit_per_min x up_i``, ``up_i`` the node's
working-sensor share averaged over the kinds (as the env's ``unwatched`` belief averages
it). Spill couples the nodes; it is handled by a documented fixed point like the
clairvoyant reference's: a first allocation without spill, then the spill each node
receives from it joins ``b_i`` and the budget is filled again; the spill a node gives is
left out (a unit does 1 / spill = 4 times more at its own node than at a neighbour).

``whittle``: the Whittle index ``W_i = a_i (k0_i u_i) w_i`` per minute of a unit
(`agents.policies.search.whittle_index`, ``k0_i`` the report and sensor hazard plus the
closing rate of a mean incident, as the env's belief uses). Fractional units: the budget
is water-filled by index: the x-th unit at node i is worth ``W_i dt exp(-a_i x dt)`` (the
index of a node's first unit, times the chance that what it watches for is still unfound
after the units before it over the interval), so ``water_fill`` with weights
``(k0_i u_i) w_i`` and hazards ``a_i`` spends it. The other rule, the budget in index order
at most a cap of units a node per round (`fill_by_index`, `WHITTLE_CAP_UNITS` a number),
did worse on validation days (`WHITTLE_CAP_UNITS`).

Units held back. Each unit costs what its analytics draw: ``kWh`` per unit-interval (a
unit's share of a device at full power, PUE included; the device's idle is shared out
with it) times the electricity price plus the carbon price (times the reward's carbon
weight) times the data centre's intensity now, all read from the observation's globals.
``search`` and ``whittle`` leave on the unused slot the units whose marginal gain is below
that cost (the shadow price never falls below it): for ``whittle``, the nodes whose index
is below that cost per minute get none (a Whittle index is the subsidy at which resting
ties with acting). On ``downtown`` a unit's interval costs about $0.002 against thousands
of expected damage, so nothing is held back; on ``tiny`` (16 nodes, 20 units) search finds
nearly all there is to find with fewer and leaves some unused. The estimation-error cost,
which units also lower, is in neither objective.

Compute budget (``[compute] carbon_budget_kg_per_day`` or ``energy_budget_kwh_per_day``):
both spend ``B x share`` with the share of `agents.policies.paced.Pacer` (even pacing),
as ``paced`` does with the posterior weights; without a budget the share is 1.

Before any estimate (the first step) every ``w_i`` is 0 and both follow the posterior
baseline (activity). Tiers: the baselines' rule (`agents.policies.tiers`), units of the
first tier, through `agents.policies.baselines.make_baseline`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from agents.policies.actions import on_nodes
from agents.policies.paced import Pacer
from agents.policies.search import fill_by_index, water_fill, whittle_index
from simcity.config.devices import device_profile
from simcity.config.monitoring import IncidentConfig
from simcity.energy.load import feeder_capacity_kw
from simcity.env import ANOMALY_SCALE, GLOBAL_FEATURES, NODE_FEATURES, CityEnv
from simcity.monitoring.incidents import EMISSIONS_RATIO_CAP, LOAD_RATIO_CAP
from simcity.monitoring.monitor import neighbour_mean

WHITTLE_CAP_UNITS: float | None = None
"""None: ``whittle`` water-fills the budget by index; a number: it fills in index order, at
most that many units a node per round. None was best by mean total cost on downtown
validation seeds 500-519 (`bench/whittle_cap.py`): $114.6k, against $116.5k, $116.2k,
$117.5k and $123.5k for caps 0.25, 0.5, 1 and 2 (posterior $113.6k)."""
SPILL_PASSES = 2
"""Fills of the search allocation: without spill, then with the spill the first gives."""

_UP = [
    NODE_FEATURES.index(n) for n in ("traffic_counters_up", "air_quality_up", "energy_meters_up")
]
_CONGESTION, _LOAD, _EMISSIONS, _HISTORY, _UNWATCHED, _ANOMALY = (
    NODE_FEATURES.index(name)
    for name in (
        "congestion_est",
        "load_ratio_est",
        "emissions_est",
        "risk_history",
        "unwatched",
        "anomaly",
    )
)
_PRICE, _CARBON_PRICE, _CARBON_NOW = (
    GLOBAL_FEATURES.index(name) for name in ("price_per_kwh", "carbon_price_per_kg", "carbon_now")
)
_J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class SearchModel:
    """What the classical baselines know besides the observation: the env's detection and
    rate models (the scenario's figures) and the city's static infrastructure."""

    dt_min: float
    budget_units: float
    unit_per_min: float  # hazard a unit adds at its node, all sensors up
    report_per_min: float
    sensor_per_min: float
    spill: float
    close_per_min: float  # closing rate of an incident of mean duration
    unwatched_max_min: float  # the ``unwatched`` feature's scale
    neighbour_mean: csr_matrix  # (N, N) row-normalised adjacency
    road_km_cap: np.ndarray  # (N,) sum over in-links of capacity x length, veh km / h
    feeder_mw: np.ndarray  # (N,) feeder ratings
    incidents: IncidentConfig
    value_per_incident: np.ndarray  # (K,) v_k, money
    unit_kwh: float  # facility kWh of one unit over one interval
    belief_shape: Callable[[np.ndarray], np.ndarray]
    """Node weights (N,) for node features (N, F): the posterior baseline's."""
    evidence_gain: float  # log likelihood ratio per unit of CUSUM evidence

    def rates_per_min(self, nodes: np.ndarray) -> np.ndarray:
        """Arrival rates (N, K) per minute implied by the estimates and the records."""
        cfg = self.incidents
        c = nodes[:, _CONGESTION]
        load = nodes[:, _LOAD]
        accident = (
            cfg.accident_per_mveh_km
            * 1e-6
            * self.road_km_cap
            * c
            * (1.0 + cfg.congestion_gain * np.minimum(c, 2.0) ** 2)
        )
        pollution = cfg.pollution_per_h * np.minimum(nodes[:, _EMISSIONS], EMISSIONS_RATIO_CAP) ** 2
        overload = (
            cfg.overload_per_mw_h
            * np.exp(cfg.overload_gain * (np.minimum(load, LOAD_RATIO_CAP) - 1.0))
            * load
            * self.feeder_mw
        )
        per_h = np.stack([accident, pollution, overload], axis=1)  # (N, K)
        return per_h * nodes[:, _HISTORY, None] / 60.0

    def unwatched_min(self, nodes: np.ndarray) -> np.ndarray:
        """The ``unwatched`` belief (N,) in minutes."""
        return nodes[:, _UNWATCHED] * self.unwatched_max_min

    def total_value(self, nodes: np.ndarray) -> float:
        """Expected value, in money, of finding all the city's undetected incidents now."""
        evidence = np.exp(np.minimum(self.evidence_gain * nodes[:, _ANOMALY] * ANOMALY_SCALE, 50.0))
        expected = self.rates_per_min(nodes) * (self.unwatched_min(nodes) * evidence)[:, None]
        return float((expected @ self.value_per_incident).sum())

    def value(self, nodes: np.ndarray) -> np.ndarray:
        """``w_i`` (N,): the posterior weights scaled to `total_value` (module doc)."""
        shape = self.belief_shape(nodes)
        total = float(shape.sum())
        if not (np.isfinite(total) and total > 0.0):
            return np.zeros(len(nodes))
        return shape * (self.total_value(nodes) / total)

    def up(self, nodes: np.ndarray) -> np.ndarray:
        """Working-sensor share (N,) averaged over the kinds."""
        return nodes[:, _UP].mean(axis=1)

    def unit_cost(self, globals_: np.ndarray) -> float:
        """Money one unit costs over one interval at the observed prices and intensity."""
        price = float(globals_[_PRICE])
        carbon = float(globals_[_CARBON_PRICE]) * float(globals_[_CARBON_NOW])  # $/kg x kg/kWh
        return self.unit_kwh * max(price + carbon, 0.0)


def search_model(
    env: CityEnv, belief_shape: Callable[[np.ndarray], np.ndarray], evidence_gain: float
) -> SearchModel:
    """The `SearchModel` of ``env``'s scenario and city, with the posterior baseline's
    weights as ``belief_shape`` and its evidence gain (`agents.policies.baselines` passes
    them in: it builds on this module, not the other way round)."""
    scenario, city = env.scenario, env.city
    mon, cfg, compute = scenario.monitoring, scenario.incidents, scenario.compute
    road = np.bincount(
        city.link_head, weights=city.capacity_veh_h * city.length_km, minlength=city.num_nodes
    )
    events = [city.nearest_node(e.lon, e.lat) for e in scenario.events]
    close = 1.0 / float(np.mean(cfg.mean_duration_min))
    value = (
        np.asarray(cfg.damage_per_min)
        * (1.0 - cfg.response_damage_factor * cfg.response_duration_factor)
        * np.asarray(cfg.mean_duration_min)
    )
    device = device_profile(compute.device, compute.devices_file)
    busy_gpus = compute.unit_flop_per_min / 60.0 / (device.peak_flop_s * device.utilisation)
    unit_kwh = device.max_power_w * busy_gpus * env.scenario.time.dt_min * 60.0 / _J_PER_KWH
    return SearchModel(
        dt_min=float(scenario.time.dt_min),
        budget_units=float(mon.budget_units),
        unit_per_min=mon.unit_per_min,
        report_per_min=mon.report_per_min,
        sensor_per_min=mon.sensor_per_min,
        spill=mon.spill,
        close_per_min=close,
        unwatched_max_min=1.0 / (mon.report_per_min + close),
        neighbour_mean=neighbour_mean(city),
        road_km_cap=road,
        feeder_mw=feeder_capacity_kw(city, scenario, events) / 1000.0,
        incidents=cfg,
        value_per_incident=value,
        unit_kwh=unit_kwh * compute.pue,
        belief_shape=belief_shape,
        evidence_gain=evidence_gain,
    )


def search_allocation(
    nodes: np.ndarray, globals_: np.ndarray, model: SearchModel, budget: float
) -> np.ndarray:
    """Units per node (N,) of the ``search`` baseline (module doc); may sum below ``budget``."""
    nodes = np.asarray(nodes, dtype=np.float64)
    up = model.up(nodes)
    rate = model.unit_per_min * up  # a_i (N,)
    rest = model.report_per_min + up * model.sensor_per_min  # b_i without spill (N,)
    value = model.value(nodes)
    price = model.unit_cost(np.asarray(globals_, dtype=np.float64))
    spill = np.zeros_like(value)
    effort = np.zeros_like(value)
    for _ in range(SPILL_PASSES):
        weights = value * np.exp(-(rest + spill) * model.dt_min)
        effort = water_fill(weights, rate, budget, model.dt_min, price).effort
        spill = rate * model.spill * (model.neighbour_mean @ effort)
    return effort


def whittle_allocation(
    nodes: np.ndarray,
    globals_: np.ndarray,
    model: SearchModel,
    budget: float,
    cap_units: float | None = WHITTLE_CAP_UNITS,
) -> np.ndarray:
    """Units per node (N,) of the ``whittle`` baseline (module doc); may sum below ``budget``.

    ``cap_units`` None water-fills by index; a number fills in index order, at most that
    many units a node per round."""
    nodes = np.asarray(nodes, dtype=np.float64)
    up = model.up(nodes)
    rate = model.unit_per_min * up  # a_i (N,)
    rest = model.report_per_min + up * model.sensor_per_min + model.close_per_min  # k0
    unwatched = model.unwatched_min(nodes)
    value = model.value(nodes)
    price = model.unit_cost(np.asarray(globals_, dtype=np.float64))
    if cap_units is None:  # first unit's gain W_i dt, the x-th's W_i dt exp(-a_i x dt)
        return water_fill(rest * unwatched * value, rate, budget, model.dt_min, price).effort
    index = whittle_index(value, rate, rest, unwatched)
    return fill_by_index(index, budget, cap_units, price / model.dt_min)


class ClassicalPolicy:
    """``search`` or ``whittle`` (module doc): units from the belief, the rest unused."""

    flops_per_decision = 0.0

    def __init__(
        self,
        name: str,
        model: SearchModel,
        whittle_cap_units: float | None = WHITTLE_CAP_UNITS,
    ) -> None:
        if name not in ("search", "whittle"):
            raise ValueError(f"no classical policy {name!r}; expected search or whittle")
        self.name = name
        self.model = model
        self.whittle_cap_units = whittle_cap_units
        self.pacer = Pacer(carbon_aware=False)

    def reset(self, seed: int | None) -> None:
        """Forget the last day's pacing."""
        self.pacer.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action (N + 1,): units per node, then the units left unused."""
        nodes = np.asarray(obs["nodes"], dtype=np.float64)
        budget = self.model.budget_units * self.pacer.share(obs)
        if self.model.budget_units <= 0.0 or not self.model.value(nodes).sum() > 0.0:
            # The posterior baseline's weights before any estimate, up to scale.
            return on_nodes(self.model.belief_shape(nodes))
        if self.name == "search":
            units = search_allocation(nodes, obs["globals"], self.model, budget)
        else:
            units = whittle_allocation(
                nodes, obs["globals"], self.model, budget, self.whittle_cap_units
            )
        unused = max(self.model.budget_units - float(units.sum()), 0.0)
        if not units.sum() > 0.0:
            return np.append(np.zeros_like(units), 1.0)
        return np.append(units, unused)
