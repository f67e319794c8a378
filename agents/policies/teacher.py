"""A privileged teacher: `EvidenceSearch` (learning from it: `agents.training.teacher`).

N nodes, K = 3 incident kinds that arrive at random, T collected observations.

Teacher. `EvidenceSearch` is the clairvoyant reference's greedy allocation
(`agents.policies.clairvoyant.ClairvoyantPolicy`) fed, instead of the true open incidents,
what a Bayes search would expect of them if it knew the true arrival rates and hidden risk
factors but saw the incidents only through the sensors: the expected undetected incidents
``b`` of a filter of the true rates under the allocations made
(``b <- b exp(-k dt) + r (1 - exp(-k dt)) / k``, k the detection hazard plus the closing
rate), weighed by the anomaly evidence ``S`` read as a likelihood ratio ``L = exp(gain S)``:
``b L / (1 + b (L - 1))`` (to first order; it saturates at one incident). It reads the env's
true state (through the world's read-only view, never writing into it), so it is not a
deployable policy; on downtown it closes about 53% of the uniform-to-clairvoyant gap at gain
0.5 (`bench/belief_bound.py`).

Budgets. Under a day's compute budget (``[compute] carbon_budget_kg_per_day`` or
``energy_budget_kwh_per_day``) the greedy allocation would spend every unit until the
budget runs out at midday; the teacher instead holds units back on the unused slot by the
``paced_carbon`` rule (`agents.policies.paced.Pacer`, carbon-aware: more where the grid
is cleaner than what is coming), an observation-only rule the student can learn. Without a
budget the pacer's share is 1 and the allocation is untouched, bit for bit.

Prices. A unit's analytics cost money and carbon: (the load's power above idle x the
interval x PUE) kWh at the electricity price plus the carbon price x the reward's carbon
weight x the grid intensity now, all read from the observation's globals. The teacher
gives a chunk of the budget only where its expected damage saved (the greedy gain x
``1 - response damage factor x response duration factor``) is worth that cost, and leaves
the rest on the unused slot; so the student sees units held back when the price it is
told rises (`agents.training.teacher` plays the teacher's days over the run's carbon
weights). On ``downtown`` at its prices a unit-interval costs a fraction of a cent, so
nothing is held back and the allocation is the greedy one.

The student that learns from it is fitted by `agents.training.teacher`.
"""

from __future__ import annotations

import numpy as np

from agents.policies.actions import RANDOM_KINDS, on_nodes
from agents.policies.clairvoyant import ClairvoyantPolicy, greedy_allocation, true_rates_per_h
from agents.policies.paced import Pacer, paced_action
from simcity.env import GLOBAL_FEATURES, CityEnv
from simcity.monitoring import incidents as inc
from simcity.monitoring.monitor import QUANTITY_FOR_INCIDENT, SENSOR_FOR_INCIDENT
from simcity.world import WorldView

_PRICE, _CARBON_PRICE, _CARBON_NOW = (
    GLOBAL_FEATURES.index(name) for name in ("price_per_kwh", "carbon_price_per_kg", "carbon_now")
)
TEACHER_GAIN = 0.5
"""The log likelihood ratio per unit of CUSUM evidence (best of 0.35, 0.5, 0.75, 1 and 1.5
on 60 downtown days, `bench/belief_bound.py`)."""


class EvidenceSearch(ClairvoyantPolicy):
    """The clairvoyant reference's allocation fed expected undetected incidents, not true
    ones (module doc).

    ``gain`` 0 ignores the evidence (the belief of the rates alone); ``hotspots`` False
    hides the hidden per-node risk factors from it.
    """

    def __init__(self, env: CityEnv, gain: float = TEACHER_GAIN, hotspots: bool = True) -> None:
        super().__init__(env)
        self.gain = gain
        self.hotspots = hotspots
        self.name = f"evidence {gain:g}"
        self.belief: np.ndarray | None = None  # (N, K) expected undetected incidents
        self.pacer = Pacer(carbon_aware=True)

    def reset(self, seed: int | None) -> None:
        """Forget the belief: a new day starts from the steady state of the rates."""
        self.belief = None
        self.pacer.reset()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The clairvoyant reference's greedy allocation with the expected incidents in
        place of the true, paced under a compute budget (module doc)."""
        share = self.pacer.share(obs)
        view = self._view(obs)
        if view.traffic.snapshot is None:
            return paced_action(super().act(obs), share)
        n = view.city.num_nodes
        hotspot = view.monitoring.hotspot if self.hotspots else np.ones(n)
        pseudo = self._pseudo_open(view)
        min_gain = self._chunk_cost(view, obs)
        allocation = greedy_allocation(
            view, pseudo, hotspot, self._damage_per_min, self.chunks, min_gain
        )
        budget = view.scenario.monitoring.budget_units
        if allocation.sum() >= budget * (1.0 - 1e-12):
            return paced_action(on_nodes(allocation), share)
        return paced_action(np.append(allocation, budget - allocation.sum()), share)

    def _chunk_cost(self, view: WorldView, obs: dict[str, np.ndarray]) -> float:
        """What one chunk of units costs over the interval, in the greedy gain's units
        ($ of damage-weighted minutes before the response factors; module doc)."""
        scenario = view.scenario
        compute, cfg = scenario.compute, scenario.incidents
        device = view.monitoring.device
        busy = compute.unit_flop_per_min / 60.0 / device.achievable_flop_s  # devices per unit
        watts = (device.max_power_w - device.idle_power_w) * busy
        unit_kwh = watts * view.dt_min * 60.0 / 3.6e6 * compute.pue
        globals_ = np.asarray(obs["globals"], dtype=np.float64)
        price = float(globals_[_PRICE]) + float(globals_[_CARBON_PRICE]) * float(
            globals_[_CARBON_NOW]
        )
        saved = 1.0 - cfg.response_damage_factor * cfg.response_duration_factor
        chunk = scenario.monitoring.budget_units / self.chunks
        return chunk * unit_kwh * max(price, 0.0) / max(saved, 1e-9)

    def _pseudo_open(self, view: WorldView) -> inc.Incidents:
        """One pseudo-incident per node and kind whose damage rate carries the expectation.

        Advances the belief by the interval just simulated (under its allocation).
        """
        mon, cfg = view.monitoring, view.scenario.monitoring
        n, dt, now = view.city.num_nodes, view.dt_min, view.now_min
        hotspot = mon.hotspot if self.hotspots else np.ones(n)
        rates = true_rates_per_h(view, hotspot) / 60.0  # (N, K) per minute
        durations = np.asarray(view.scenario.incidents.mean_duration_min)  # (K,)
        up = mon.sensors_up_share[:, SENSOR_FOR_INCIDENT[RANDOM_KINDS]]  # (N, K)
        allocation = view.allocation
        hazard = inc.detection_hazard_per_min(
            allocation[:, None],
            (mon.neighbour_mean @ allocation)[:, None],
            up,
            report_per_min=cfg.report_per_min,
            sensor_per_min=cfg.sensor_per_min,
            unit_per_min=cfg.unit_per_min,
            spill=cfg.spill,
        )  # (N, K)
        k = hazard + 1.0 / durations
        if self.belief is None:
            self.belief = rates / (cfg.report_per_min + 1.0 / durations)
        else:
            decay = np.exp(-k * dt)
            self.belief = self.belief * decay + rates / k * (1.0 - decay)
        quantity = QUANTITY_FOR_INCIDENT[RANDOM_KINDS]  # (K,)
        ratio = np.exp(np.minimum(self.gain * mon.anomaly[:, quantity], 50.0))  # (N, K)
        expected = self.belief * ratio / (1.0 + self.belief * (ratio - 1.0))  # (N, K)
        nodes = np.repeat(np.arange(n), len(RANDOM_KINDS))
        kinds = np.tile(RANDOM_KINDS, n)
        m = len(nodes)
        damage = np.asarray(view.scenario.incidents.damage_per_min)[kinds]
        return inc.Incidents(
            kind=kinds.astype(np.int64),
            node=nodes.astype(np.int64),
            link=np.full(m, -1, dtype=np.int64),
            severity=np.ones(m),
            start_min=np.full(m, now - 1.0),
            end_min=now + durations[kinds],
            damage_per_min=damage * expected.ravel(),
            detected_min=np.full(m, np.nan),
            damage=np.zeros(m),
            clock=np.ones(m),
        )
