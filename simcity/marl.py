"""`CityParallelEnv`: `CityEnv` as a PettingZoo ``ParallelEnv``, one agent per node.

N nodes, F node features, G global features, T analytics tiers (1 without
``[[compute.tiers]]``). Needs PettingZoo (``pip install -e '.[marl]'``, in the dev extra);
``import simcity`` never imports this module.

Agents: ``node_0`` ... ``node_{N-1}``, agent i for the city's node i (``env.city.node_ids[i]``).
    All act every step; the day ends for all at once (truncated), and ``agents`` empties.
Action: agent i's weights (T,) in [0, 1]: its entries of `CityEnv`'s action. The shared
    budget is split as `CityEnv` splits it: node i gets ``budget * w_i / (sum(w) + u)``
    (per tier: divided by the tier's cost), where u, the weight of CityEnv's "unused" slot,
    is the constructor's ``unused_weight``, fixed for the env's life. With u = 0 (the
    default) the whole budget is spent whenever any agent bids; u > 0 lets the agents save
    compute by bidding low together. An agent without an action this step bids 0.
Observation: agent i sees ``{"node": its row of CityEnv's nodes (F,), "globals": (G,)}``;
    `state` is the whole observation flattened (N * F + G,), for centralised critics.
Reward: every agent gets CityEnv's reward (the team's cost in money, a common payoff);
    ``infos[agent]`` has its ``node_cost`` (its share of the cost, `CityEnv`'s
    ``info["node_cost"]``) and ``units`` (what it got); `last_info` is CityEnv's whole info.
Reset options: CityEnv's (`simcity.env.RESET_OPTIONS`), checked as CityEnv checks them.
    Keys it does not know are dropped with a warning, not refused as CityEnv refuses them:
    PettingZoo's ``parallel_api_test`` resets with ``options={"options": 1}``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from simcity.city.graph import City
from simcity.config.devices import check_nonnegative
from simcity.config.scenario import Scenario
from simcity.env import (
    FEATURE_MAX,
    GLOBAL_FEATURES,
    NODE_FEATURES,
    RENDER_MODES,
    RESET_OPTIONS,
    CityEnv,
)

Observation = dict[str, np.ndarray]


class CityParallelEnv(ParallelEnv[str, Observation, np.ndarray]):
    """Every node an agent bidding for the shared monitoring budget; see module doc."""

    metadata = {  # noqa: RUF012 (PettingZoo declares it per class)
        "name": "simcity_city_monitoring_v0",
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        scenario: str | Path | Scenario = "downtown",
        *,
        unused_weight: float = 0.0,
        policy_flop_per_decision: float = 0.0,
        city: City | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.env = CityEnv(
            scenario,
            policy_flop_per_decision=policy_flop_per_decision,
            city=city,
            render_mode=render_mode,
        )
        self.render_mode = render_mode
        self.unused_weight = check_nonnegative("unused_weight", unused_weight)
        n, tiers = self.env.city.num_nodes, self.env.num_tiers
        self.possible_agents: list[str] = [f"node_{i}" for i in range(n)]
        self.agents: list[str] = []
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        # One space object per agent, the same on every call (PettingZoo's API test).
        self._observation_spaces = {
            agent: spaces.Dict(
                {
                    "node": spaces.Box(0.0, FEATURE_MAX, (len(NODE_FEATURES),), np.float32),
                    "globals": spaces.Box(-1.0, FEATURE_MAX, (len(GLOBAL_FEATURES),), np.float32),
                }
            )
            for agent in self.possible_agents
        }
        self._action_spaces = {
            agent: spaces.Box(0.0, 1.0, (tiers,), np.float32) for agent in self.possible_agents
        }
        self.state_space = spaces.Box(
            -1.0, FEATURE_MAX, (n * len(NODE_FEATURES) + len(GLOBAL_FEATURES),), np.float32
        )
        self._obs: Observation | None = None
        self.last_info: dict[str, Any] = {}
        """CityEnv's ``info`` of the last step (empty after a reset)."""

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Observation], dict[str, dict[str, Any]]]:
        options = dict(options or {})
        unknown = sorted(str(key) for key in options if key not in RESET_OPTIONS)
        if unknown:
            warnings.warn(
                f"reset options {', '.join(unknown)} are not CityEnv's; ignored "
                f"(known: {', '.join(RESET_OPTIONS)})",
                UserWarning,
                stacklevel=2,
            )
        known = {key: value for key, value in options.items() if key in RESET_OPTIONS}
        self._obs, _ = self.env.reset(seed=seed, options=known)
        self.agents = self.possible_agents[:]
        self.last_info = {}
        return self._split(self._obs, self.agents), {agent: {} for agent in self.agents}

    def step(
        self, actions: dict[str, np.ndarray]
    ) -> tuple[
        dict[str, Observation],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        if not self.agents:
            raise RuntimeError("the day is over: call reset() before step()")
        self._obs, reward, terminated, truncated, info = self.env.step(self.joint_action(actions))
        self.last_info = info
        agents = self.agents
        units = self.env.world.view.allocation if self.env.world is not None else None
        node_cost = info["node_cost"]
        infos = {
            agent: {
                "node_cost": float(node_cost[self._index[agent]]),
                "units": float(np.sum(units[self._index[agent]])) if units is not None else 0.0,
            }
            for agent in agents
        }
        observations = self._split(self._obs, agents)
        if terminated or truncated:
            self.agents = []
        return (
            observations,
            dict.fromkeys(agents, float(reward)),
            dict.fromkeys(agents, bool(terminated)),
            dict.fromkeys(agents, bool(truncated)),
            infos,
        )

    def joint_action(self, actions: dict[str, np.ndarray]) -> np.ndarray:
        """CityEnv's action (N * T + 1,) for the agents' ``actions``: their weights, 0 for
        an agent without one, and `unused_weight` in the unused slot; ValueError for an
        agent that is not live or a weight of the wrong shape."""
        tiers = self.env.num_tiers
        joint = np.zeros(len(self.possible_agents) * tiers + 1)
        for agent, action in actions.items():
            if agent not in self._index or agent not in self.agents:
                raise ValueError(f"{agent!r} is not a live agent")
            weights = np.asarray(action, dtype=np.float64).reshape(-1)
            if weights.shape != (tiers,):
                raise ValueError(f"{agent}'s action has shape {weights.shape}; expected ({tiers},)")
            i = self._index[agent]
            joint[i * tiers : (i + 1) * tiers] = weights
        joint[-1] = self.unused_weight
        return joint

    def state(self) -> np.ndarray:
        """The whole observation, flattened: CityEnv's nodes (N * F,) then globals (G,)."""
        if self._obs is None:
            raise RuntimeError("call reset() before state()")
        return np.concatenate([self._obs["nodes"].ravel(), self._obs["globals"]])

    def render(self) -> np.ndarray | None:
        """The city now, as `CityEnv.render` draws it."""
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    def _split(self, obs: Observation, agents: list[str]) -> dict[str, Observation]:
        nodes, globals_ = obs["nodes"], obs["globals"]
        return {
            agent: {"node": nodes[self._index[agent]].copy(), "globals": globals_.copy()}
            for agent in agents
        }


def parallel_env(**kwargs: Any) -> CityParallelEnv:
    """PettingZoo's conventional constructor: ``CityParallelEnv(**kwargs)``."""
    return CityParallelEnv(**kwargs)
