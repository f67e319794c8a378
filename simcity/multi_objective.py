"""CityMOEnv: `CityEnv` with a vector reward, in MO-Gymnasium's convention.

Registered as ``simcity/CityMonitoringMO-v0``. ``step`` returns, instead of one number,
minus the step's five outcomes in their own units (float32, shape ``(5,)``, in
`REWARD_COMPONENTS` order): incident damage (money), estimation-error cost (money), compute
energy (kWh, facility, PUE included), compute carbon (kg CO2eq) and the travel delay that
accidents add (vehicle-hours; `simcity.traffic`, 0 where the scenario's
``delay_cost_per_veh_h`` is 0 and in the synthetic cities' quiet hours). The env carries
``reward_space`` (a Box, every component <= 0) and ``reward_dim``, as MO-Gymnasium's own
environments do; ``info`` is `CityEnv`'s, unchanged.

It subclasses `CityEnv` rather than wrapping it, as MO-Gymnasium's environments subclass
their single-objective originals: its wrappers (``LinearReward``, ``MORecordEpisodeStatistics``)
read ``env.unwrapped.reward_space``, which a `gymnasium.Wrapper` could not provide.

`cost_weights` gives the weighting that turns the vector back into the scalar env's
money: ``reward_vector @ cost_weights(scenario) == -info["cost_total"]`` (times
``reward.scale``: the scalar reward). With MO-Gymnasium installed,
``mo_gymnasium.wrappers.LinearReward(env, weight=cost_weights(scenario))`` plays the
scalar env's cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from simcity.city.graph import City
from simcity.config.scenario import Scenario
from simcity.env import CityEnv

REWARD_COMPONENTS: tuple[str, ...] = (
    "damage_cost",  # -info["cost_damage"]
    "estimation_cost",  # -info["cost_estimation"]
    "compute_kwh",  # -info["compute_kwh"]
    "compute_kgco2",  # -info["compute_gco2"] / 1000
    "delay_veh_h",  # -info["incident_delay_veh_h"]
)
_G_PER_KG = 1000.0
_KG_PER_T = 1000.0


def reward_vector(info: Mapping[str, Any]) -> np.ndarray:
    """Minus the step's damage and estimation cost (money), compute kWh and kgCO2, and the
    accidents' travel delay (veh-h) (float32, (5,)).

    >>> reward_vector({"cost_damage": 0.0, "cost_estimation": 0.5, "compute_kwh": 0.25,
    ...                "compute_gco2": 100.0, "incident_delay_veh_h": 2.0})
    array([ 0.  , -0.5 , -0.25, -0.1 , -2.  ], dtype=float32)
    """
    terms = [
        info["cost_damage"],
        info["cost_estimation"],
        info["compute_kwh"],
        info["compute_gco2"] / _G_PER_KG,
        info["incident_delay_veh_h"],
    ]
    return np.float32(0.0) - np.array(terms, dtype=np.float32)  # 0 - x: no -0.0 printed


def cost_weights(scenario: Scenario) -> np.ndarray:
    """Weights (5,) under which the reward vector sums to minus the step's cost in money.

    Damage and estimation are money already (weight 1); a kWh costs ``price_per_kwh``; a
    kg of CO2 costs ``carbon_price_per_t / 1000`` times the reward's ``carbon_weight``; a
    vehicle-hour of delay costs the reward's ``delay_cost_per_veh_h``.
    Multiply by ``scenario.reward.scale`` for `CityEnv`'s scalar reward.
    """
    compute = scenario.compute
    per_kg = compute.carbon_price_per_t / _KG_PER_T * scenario.reward.carbon_weight
    delay = scenario.reward.delay_cost_per_veh_h
    return np.array([1.0, 1.0, compute.price_per_kwh, per_kg, delay])


class CityMOEnv(CityEnv):
    """`CityEnv` whose ``step`` returns the reward vector of `reward_vector`; see module doc."""

    reward_dim = len(REWARD_COMPONENTS)

    def __init__(
        self,
        scenario: str | Path | Scenario = "downtown",
        *,
        policy_flop_per_decision: float = 0.0,
        city: City | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            scenario,
            policy_flop_per_decision=policy_flop_per_decision,
            city=city,
            render_mode=render_mode,
        )
        self.reward_space = spaces.Box(-np.inf, 0.0, (self.reward_dim,), np.float32)

    def step(  # type: ignore[override]
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = super().step(action)
        return obs, reward_vector(info), terminated, truncated, info
