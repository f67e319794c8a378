"""How much of the uniform-to-oracle gap can a policy close without seeing incidents?

Not a test: prints a table. Run from the repository root:

    python bench/belief_bound.py [--scenario downtown] [--seeds 8]

Clairvoyant-about-rates (but not incidents) references beside uniform, alarm, posterior
and the oracle, all on the same seeds (damage $ per day, paired difference to uniform):

- ``rate``: the oracle's greedy allocation fed only the true arrival rates of the coming
  interval (no open incidents).
- ``belief``: the same fed, as open incidents, the exact expected undetected incidents
  at every node and kind (a Bayes filter of the true rates under the allocations made:
  ``b <- b exp(-k dt) + r (1 - exp(-k dt)) / k``), the best a policy that knows the rates
  but not where incidents are can track.
- ``evidence G``: that belief weighed by the sensors' anomaly evidence read as a
  likelihood ratio ``exp(G S)`` (`EvidenceOracle`): a myopic Bayes search that knows the
  true rates and sees what an observation-based policy sees of the incidents.

``--no-hotspots`` hides the hidden per-node risk factors from the references, as a policy
that only sees the features would be (it sees the records' estimate, ``risk_history``).
Measured on downtown (``--seeds 60``, the held-out days of ``bench/learning.py``; gap
closed in damage): alarm 42.2%, posterior 47.3%, rate 7.5%, belief 32.6%, evidence
0.35/0.5/0.75/1/1.5: 49.6/52.8/52.7/49.4/39.5%; without the hotspot factors
(``--no-hotspots --gains 0.5 1``) rate -11.9%, belief 16.1%, evidence 0.5: 42.6%. So at
``monitoring.alarm_snr`` 1 a search that knew every true rate and hotspot factor and
read the evidence would close about 53% of the gap; the posterior heuristic, which only
estimates them, closes 47%.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from agents.baselines import _RANDOM_KINDS, make_baseline
from agents.evaluate import held_out_seeds, run_episode
from agents.oracle import OraclePolicy
from simcity import incidents as inc
from simcity.env import CityEnv
from simcity.monitoring import QUANTITY_FOR_INCIDENT, SENSOR_FOR_INCIDENT
from simcity.truth import true_state

warnings.filterwarnings("ignore", message=".*blank value")


class RateOracle(OraclePolicy):
    """The oracle fed the true arrival rates but no open incidents."""

    name = "rate"

    def __init__(self, env: CityEnv, hotspots: bool = True) -> None:
        super().__init__(env)
        self.hotspots = hotspots

    def _pseudo_open(self) -> inc.Incidents:
        return inc.Incidents.empty()

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        world = self.env.world
        if world is None or world.traffic is None:
            return super().act(obs)
        mon = world.monitoring
        saved_open, saved_hot = mon.open, mon.hotspot
        mon.open = self._pseudo_open()
        if not self.hotspots:
            mon.hotspot = np.ones_like(saved_hot)
        try:
            return super().act(obs)
        finally:
            mon.open, mon.hotspot = saved_open, saved_hot


class BeliefOracle(RateOracle):
    """The oracle fed the expected undetected incidents of a Bayes filter on true rates."""

    name = "belief"

    def reset(self, seed: int | None) -> None:
        self.belief: np.ndarray | None = None  # (N, K) expected undetected incidents

    def _pseudo_open(self) -> inc.Incidents:
        world = self.env.world
        assert world is not None and world.traffic is not None
        mon, cfg = world.monitoring, world.scenario.monitoring
        n, dt, now = world.city.num_nodes, world.dt_min, world.env.now
        hotspot = mon.hotspot if self.hotspots else np.ones(n)
        capacity = world.city.capacity_veh_h * world.capacity_factor * mon.cut_factor
        state = true_state(
            world.city,
            world.scenario,
            world.flows_veh_h,
            world.times_min,
            capacity,
            world.node_load_kw,
            world.feeder_kw,
            hotspot,
        )
        accidents = np.bincount(
            world.city.link_head, weights=state.accident_rate_per_h, minlength=n
        )
        rates = np.stack([accidents, state.pollution_rate_per_h, state.overload_rate_per_h], 1)
        rates = rates / 60.0  # (N, K) per minute
        durations = np.asarray(world.scenario.incidents.mean_duration_min)  # (K,)
        up = mon.sensors_up_share[:, SENSOR_FOR_INCIDENT[_RANDOM_KINDS]]  # (N, K)
        allocation = world.allocation
        hazard = inc.detection_hazard_per_min(
            allocation[:, None],
            (mon.neighbour_mean @ allocation)[:, None],
            up,
            report_per_min=cfg.report_per_min,
            sensor_per_min=cfg.sensor_per_min,
            unit_per_min=cfg.unit_per_min,
            spill=cfg.spill,
        )
        k = hazard + 1.0 / durations
        if self.belief is None:
            self.belief = rates / (cfg.report_per_min + 1.0 / durations)
        else:
            decay = np.exp(-k * dt)
            self.belief = self.belief * decay + rates / k * (1.0 - decay)
        nodes = np.repeat(np.arange(n), len(_RANDOM_KINDS))
        kinds = np.tile(_RANDOM_KINDS, n)
        m = len(nodes)
        damage = np.asarray(world.scenario.incidents.damage_per_min)[kinds]
        return inc.Incidents(
            kind=kinds.astype(np.int64),
            node=nodes.astype(np.int64),
            link=np.full(m, -1, dtype=np.int64),
            severity=np.ones(m),
            start_min=np.full(m, now - 1.0),
            end_min=now + durations[kinds],
            damage_per_min=damage * self.belief.ravel(),
            detected_min=np.full(m, np.nan),
            damage=np.zeros(m),
            clock=np.ones(m),
        )


class EvidenceOracle(BeliefOracle):
    """`BeliefOracle` whose expected undetected incidents also weigh the sensors' evidence.

    The anomaly CUSUM ``S`` (node, quantity) read as a likelihood ratio ``L = exp(gain S)``
    for "an incident of this kind is here": a Poisson belief b becomes, to first order,
    ``b L / (1 + b (L - 1))`` (Bayes, saturating at one incident).
    """

    def __init__(self, env: CityEnv, hotspots: bool = True, gain: float = 0.5) -> None:
        super().__init__(env, hotspots)
        self.gain = gain
        self.name = f"evidence {gain:g}"

    def _pseudo_open(self) -> inc.Incidents:
        table = super()._pseudo_open()
        world = self.env.world
        assert world is not None and self.belief is not None
        quantity = QUANTITY_FOR_INCIDENT[_RANDOM_KINDS]  # (K,)
        ratio = np.exp(np.minimum(self.gain * world.monitoring.anomaly[:, quantity], 50.0))
        b = self.belief  # (N, K)
        scale = (ratio / (1.0 + b * (ratio - 1.0))).ravel()  # (N K,) posterior / prior
        return replace(table, damage_per_min=table.damage_per_min * scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="downtown")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--no-hotspots", action="store_true")
    parser.add_argument("--gains", type=float, nargs="*", default=[0.5, 1.0])
    args = parser.parse_args()
    env = CityEnv(args.scenario)
    hot = not args.no_hotspots
    policies: dict[str, Any] = {
        name: make_baseline(name, env) for name in ("uniform", "alarm", "posterior", "oracle")
    }
    policies["rate"] = RateOracle(env, hot)
    policies["belief"] = BeliefOracle(env, hot)
    for gain in args.gains:
        policies[f"evidence {gain:g}"] = EvidenceOracle(env, hot, gain)
    damage: dict[str, list[float]] = {name: [] for name in policies}
    for seed in held_out_seeds(args.seeds):
        for name, policy in policies.items():
            damage[name].append(run_episode(env, policy, seed).summary["damage"])
    uniform, oracle = np.mean(damage["uniform"]), np.mean(damage["oracle"])
    print(f"{args.scenario}, {args.seeds} seeds, hotspot factors known: {hot}")
    for name, values in damage.items():
        diff = np.array(values) - np.array(damage["uniform"])
        half = 1.96 * diff.std(ddof=1) / np.sqrt(len(diff))
        gap = (uniform - np.mean(values)) / (uniform - oracle)
        print(
            f"  {name:12s} {np.mean(values):10,.0f}  vs uniform {diff.mean():+9,.0f}"
            f" +- {half:7,.0f}  gap closed {gap:6.1%}"
        )


if __name__ == "__main__":
    main()
