"""Rollouts: the envs a run plays, the seeds of their days, and how a rollout is collected.

Shapes: T rollout steps per env, E parallel envs, N nodes, S action slots credited
separately (`agents.training.credit`).

Twin rollouts. With ``TrainConfig.twins`` (the default) env i and env i + E/2 play the
same day (the same reset seed) and explore with opposite noise (log-weights
``logits ± std * eps``, `sample_actions`). `CityEnv` gives runs from one seed the same
incidents with the same detection luck (`simcity.monitoring.incidents`, "Common random
numbers"), so the difference of the twins' advantages
(`agents.training.ppo_math.mirrored_advantages`) keeps what the allocations did and drops
which incidents happened: antithetic sampling with a baseline that cancels exactly in the
gradient on a day's first step, where the twins see one observation. Later their states
differ and the baseline is biased, to second order (measured in `agents.training.credit`,
``TrainConfig.twin_baseline``). The exploration std is fixed (its gradient cancels over a
pair); the critic still learns, for GAE.

The day's end. Every env's episodes have one length (`CityEnv` days truncate after
``time.num_steps`` and never terminate), so all envs start their episodes together and the
env step count says which episode each plays. The observation carries ``day_progress``,
so the time limit is part of the task the policy sees: the trainer treats the day's end
as terminal (`collect_rollout` bootstraps nothing past it, and the critic is never asked
to value the final observation, a state it never trains on). With the short horizon
(``gamma`` 0.8) this changes only the last few steps' targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from torch.distributions import Normal

from agents.policies.attention import action_distribution, to_weights
from agents.training.buffer import Rollout
from agents.training.config import TrainConfig
from agents.training.credit import Credit
from agents.training.learner import Learner
from simcity.config.scenario import Scenario
from simcity.env import CityEnv, with_carbon_weight

TEACHER_ENV_INDEX = 1_000_000
"""`episode_seed`'s env index for the teacher's days: no vector env has that many envs."""


def episode_seed(seed: int, env_index: int, episode: int) -> int:
    """Reset seed of episode ``episode`` of env ``env_index``: a hash, so runs never overlap."""
    return int(np.random.SeedSequence([seed, env_index, episode]).generate_state(1)[0])


def episode_carbon_weight(seed: int, day: int, episode: int, weights: tuple[float, ...]) -> float:
    """The carbon weight of episode ``episode`` of day stream ``day``: one of ``weights``,
    drawn from the seeds (the same for twins, which share their day)."""
    index = np.random.SeedSequence([seed, day, episode, 0xC02]).generate_state(1)[0]
    return float(weights[int(index) % len(weights)])


@dataclass(frozen=True)
class TrainEnvs:
    """The run's vector of envs on one shared city; the trainer resets them itself, to
    choose every episode's seed."""

    vector: SyncVectorEnv | AsyncVectorEnv
    first: CityEnv  # env 0 when the envs run in this process; the teacher plays on it
    num_envs: int
    day_len: int  # steps of every episode
    seed: int
    twins: bool
    scenario: Scenario | None = None
    carbon_weights: tuple[float, ...] = ()  # empty: the scenario's weight every episode

    def reset(self, step: int, flops_per_decision: int) -> dict[str, np.ndarray]:
        """Start the episodes that begin after ``step`` env steps (over all envs)."""
        E = self.num_envs
        episode = (step // E) // self.day_len
        days = [i % (E // 2) if self.twins else i for i in range(E)]  # twins: same day
        seeds: list[int | None] = [episode_seed(self.seed, d, episode) for d in days]
        if self.carbon_weights and self.scenario is not None:
            weights = [
                episode_carbon_weight(self.seed, d, episode, self.carbon_weights) for d in days
            ]
            self.vector.set_attr(
                "scenario", [with_carbon_weight(self.scenario, w) for w in weights]
            )
        obs, _ = self.vector.reset(
            seed=seeds, options={"policy_flop_per_decision": flops_per_decision}
        )
        return obs


def make_envs(scenario: Scenario, config: TrainConfig) -> TrainEnvs:
    """``config.num_envs`` envs of ``scenario``, in worker processes if ``config.async_envs``
    (the results are the same)."""
    first = CityEnv(scenario)
    city, E = first.city, config.num_envs
    vector: SyncVectorEnv | AsyncVectorEnv
    if config.async_envs:
        vector = AsyncVectorEnv(
            [lambda: CityEnv(scenario, city=city) for _ in range(E)],
            autoreset_mode=AutoresetMode.DISABLED,
        )
    else:
        vector = SyncVectorEnv(
            [lambda: first] + [lambda: CityEnv(scenario, city=city) for _ in range(E - 1)],
            autoreset_mode=AutoresetMode.DISABLED,
        )
    return TrainEnvs(
        vector,
        first,
        E,
        scenario.time.num_steps,
        config.seed,
        config.twins,
        scenario,
        tuple(config.carbon_weights),
    )


@dataclass(frozen=True)
class Episodes:
    """The episodes under way: where the envs are between rollouts."""

    obs: dict[str, np.ndarray]  # the envs' last observation
    step: int  # env steps so far, over all envs
    returns: np.ndarray  # (E,) reward so far in each env's episode
    actions: torch.Tensor  # (steps so far, E, N + 1) played in them, replayed by a resume


def sample_actions(logits: torch.Tensor, dist: Normal, twins: bool) -> torch.Tensor:
    """Log-weights (E, N + 1) to play around ``logits``; with ``twins`` env i + E/2 gets
    env i's noise mirrored, so each pair's mean is exactly its logits."""
    if not twins:
        return dist.sample()
    E, num_actions = logits.shape
    eps = torch.randn(E // 2, num_actions)  # (E/2, N + 1)
    return logits + dist.stddev * torch.cat([eps, -eps])


def collect_rollout(
    envs: TrainEnvs,
    learner: Learner,
    credit: Credit,
    episodes: Episodes,
    *,
    num_steps: int,
    value_std: float,
) -> tuple[Rollout, Episodes]:
    """Play ``num_steps`` steps in every env from ``episodes``; return what was collected
    and the episodes under way after it. ``value_std`` turns critic outputs into money.

    A day's end is terminal (module doc): nothing is bootstrapped past it, so the final
    observation of a day is never valued. The buffers are allocated once, and the network
    runs under ``torch.inference_mode`` (its outputs are copied into them)."""
    T, E, S = num_steps, envs.num_envs, credit.num_slots
    model = learner.model
    obs, step = episodes.obs, episodes.step
    n, f = obs["nodes"].shape[1:]
    num_actions = n * model.config.num_tiers + 1
    obs_nodes = torch.zeros(T, E, n, f)  # (T, E, N, F)
    obs_globals = torch.zeros(T, E, obs["globals"].shape[1])  # (T, E, G)
    actions = torch.zeros(T, E, num_actions)  # (T, E, N + 1)
    mean_actions = torch.zeros(T, E, num_actions)  # (T, E, N + 1)
    log_probs, rewards, values = (torch.zeros(T, E, S) for _ in range(3))  # (T, E, S) each
    dones = torch.zeros(T, E, dtype=torch.bool)  # (T, E)
    starts = torch.zeros(T, E, dtype=torch.bool)  # (T, E)
    episode_return = episodes.returns.copy()
    day_actions = torch.zeros(envs.day_len, E, num_actions)  # (day, E, N + 1) this day's
    played = episodes.actions.shape[0]  # steps of the day played so far
    day_actions[:played] = episodes.actions
    finished: list[float] = []
    for t in range(T):
        starts[t] = played == 0
        obs_nodes[t] = torch.as_tensor(obs["nodes"])
        obs_globals[t] = torch.as_tensor(obs["globals"])
        with torch.inference_mode():
            output = learner(obs_nodes[t], obs_globals[t])
            dist = action_distribution(output.logits, model.log_std)
            action = sample_actions(output.logits, dist, envs.twins)  # (E, N + 1)
            actions[t], mean_actions[t] = action, output.logits
            log_probs[t] = credit.log_probs(dist.log_prob(action))
            values[t] = credit.values(output.value) * value_std
            weights = to_weights(action).numpy()
        obs, reward, terminated, truncated, info = envs.vector.step(weights)
        step += E
        rewards[t] = credit.rewards(reward, info["node_cost"])
        episode_return += reward
        day_actions[played] = actions[t]
        played += 1
        ended = terminated | truncated  # (E,)
        dones[t] = torch.as_tensor(ended)
        if ended.any():
            if not ended.all():
                raise RuntimeError("envs fell out of step; resume needs equal episode lengths")
            finished.extend(episode_return.tolist())
            episode_return[:] = 0.0
            played = 0
            obs = envs.reset(step, learner.flops_per_decision)
    with torch.inference_mode():
        next_value = credit.values(learner.act(obs).value) * value_std  # (E, S)
    rollout = Rollout(
        obs_nodes,
        obs_globals,
        actions,
        mean_actions,
        model.log_std.detach().clone(),
        log_probs,
        rewards,
        values,
        dones,
        starts,
        next_value.clone(),  # a normal tensor: inference tensors cannot enter autograd
        tuple(finished),
    )
    return rollout, Episodes(obs, step, episode_return, day_actions[:played].clone())
