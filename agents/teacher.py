"""A privileged teacher and learning from it: `EvidenceSearch` and `pretrain_from_teacher`.

N nodes, K = 3 incident kinds that arrive at random, T collected observations.

Teacher. `EvidenceSearch` is the oracle's greedy allocation (`agents.oracle.OraclePolicy`)
fed, instead of the true open incidents, what a Bayes search would expect of them if it
knew the true arrival rates and hidden risk factors but saw the incidents only through
the sensors: the expected undetected incidents ``b`` of a filter of the true rates under
the allocations made (``b <- b exp(-k dt) + r (1 - exp(-k dt)) / k``, k the detection
hazard plus the closing rate), weighed by the anomaly evidence ``S`` read as a likelihood
ratio ``L = exp(gain S)``: ``b L / (1 + b (L - 1))`` (to first order; it saturates at one
incident). It reads the env's true state, so it is not a deployable policy; on downtown
it closes about 53% of the uniform-to-oracle gap at gain 0.5 (`bench/belief_bound.py`).

Student. `pretrain_from_teacher` fits an `AttentionPolicy`, which sees only the
observation, to the teacher's allocations (learning by cheating, Chen et al. 2019) with
DAgger (Ross et al. 2011): the posterior heuristic plays the first days and the teacher
labels every step; then the student plays further days, labelled the same way, and is
refitted on all of it. The loss is KL(teacher || student) of the allocations over the
N + 1 slots (`agents.distill.fit_to_allocations`, no value term). What the teacher knows
and the observation does not (the true rates, the risk factors) the student can only
average over: it learns the teacher's allocation given what it sees.

Days are training seeds (`agents.train.episode_seed` of the run's seed, never a
held-out day); minibatch order draws from its own generator, so the global torch
generator is untouched and a run with a teacher resumes bit for bit like any other.
"""

from __future__ import annotations

import numpy as np
import torch

from agents.attention import AttentionPolicy
from agents.baselines import _RANDOM_KINDS, PosteriorPolicy
from agents.checkpoint import TrainedPolicy, city_neighbours
from agents.distill import TeacherData, fit_to_allocations
from agents.oracle import OraclePolicy, true_rates_per_h
from agents.policy import Policy
from agents.train_config import TeacherConfig
from simcity import incidents as inc
from simcity.env import CityEnv
from simcity.monitoring import QUANTITY_FOR_INCIDENT, SENSOR_FOR_INCIDENT

TEACHER_GAIN = TeacherConfig.gain


class EvidenceSearch(OraclePolicy):
    """The oracle's allocation fed expected undetected incidents, not true ones (module doc).

    ``gain`` 0 ignores the evidence (the belief of the rates alone); ``hotspots`` False
    hides the hidden per-node risk factors from it.
    """

    def __init__(self, env: CityEnv, gain: float = TEACHER_GAIN, hotspots: bool = True) -> None:
        super().__init__(env)
        self.gain = gain
        self.hotspots = hotspots
        self.name = f"evidence {gain:g}"
        self.belief: np.ndarray | None = None  # (N, K) expected undetected incidents

    def reset(self, seed: int | None) -> None:
        """Forget the belief: a new day starts from the steady state of the rates."""
        self.belief = None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The oracle's greedy allocation with the expected incidents in place of the true."""
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

    def _pseudo_open(self) -> inc.Incidents:
        """One pseudo-incident per node and kind whose damage rate carries the expectation."""
        world = self.env.world
        assert world is not None and world.traffic is not None
        mon, cfg = world.monitoring, world.scenario.monitoring
        n, dt, now = world.city.num_nodes, world.dt_min, world.env.now
        hotspot = mon.hotspot if self.hotspots else np.ones(n)
        rates = true_rates_per_h(world, hotspot) / 60.0  # (N, K) per minute
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
        )  # (N, K)
        k = hazard + 1.0 / durations
        if self.belief is None:
            self.belief = rates / (cfg.report_per_min + 1.0 / durations)
        else:
            decay = np.exp(-k * dt)
            self.belief = self.belief * decay + rates / k * (1.0 - decay)
        quantity = QUANTITY_FOR_INCIDENT[_RANDOM_KINDS]  # (K,)
        ratio = np.exp(np.minimum(self.gain * mon.anomaly[:, quantity], 50.0))  # (N, K)
        expected = self.belief * ratio / (1.0 + self.belief * (ratio - 1.0))  # (N, K)
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
            damage_per_min=damage * expected.ravel(),
            detected_min=np.full(m, np.nan),
            damage=np.zeros(m),
            clock=np.ones(m),
        )


def pretrain_from_teacher(
    model: AttentionPolicy, env: CityEnv, config: TeacherConfig, seeds: list[int]
) -> list[float]:
    """Fit ``model`` in place to the teacher on days ``seeds`` (at least the days the
    config plays); return the last epoch's mean loss of every fit."""
    teacher = EvidenceSearch(env, config.gain)
    neighbours, distances = city_neighbours(env.city, model.config.num_neighbours)
    data: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    generator = torch.Generator().manual_seed(seeds[0] % 2**63)
    losses = []
    rounds = [(config.days, config.epochs)]
    rounds += [(config.dagger_days, max(1, config.epochs // 2))] * config.dagger_rounds
    first = 0
    for index, (days, epochs) in enumerate(rounds):
        player: Policy = PosteriorPolicy() if index == 0 else TrainedPolicy(model, env, "student")
        data += _labelled_days(env, player, teacher, seeds[first : first + days])
        first += days
        nodes, globals_, targets = (torch.stack(part) for part in zip(*data, strict=True))
        # No value term (weight 0): the critic learns under PPO.
        table = TeacherData(nodes, globals_, targets, torch.zeros_like(targets))
        fitted = fit_to_allocations(
            model,
            table,
            neighbours,
            distances,
            epochs=epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            value_weight=0.0,
            generator=generator,
        )
        losses.append(fitted[-1])
    return losses


def _labelled_days(
    env: CityEnv, player: Policy, teacher: EvidenceSearch, seeds: list[int]
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(nodes (N, F), globals (G,), teacher's log-shares (N + 1,)) of every step played."""
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        player.reset(seed)
        teacher.reset(seed)
        done = False
        while not done:
            target = teacher.act(obs)  # every step: its belief follows the allocations
            share = target / target.sum()
            out.append(
                (
                    torch.as_tensor(obs["nodes"], dtype=torch.float32),
                    torch.as_tensor(obs["globals"], dtype=torch.float32),
                    torch.as_tensor(np.log(share + 1e-9), dtype=torch.float32),
                )
            )
            obs, _, terminated, truncated, _ = env.step(player.act(obs))
            done = terminated or truncated
    return out
