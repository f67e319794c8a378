"""Stable-Baselines3 PPO on `CityEnv`: a tuned reference for our trainer, and SB3's defaults.

K action slots (N * T node-tier weights and the unused slot), N nodes, F node features.

Two variants, trained by `train_sb3` and played by `SB3Policy`:

``defaults`` is SB3 PPO as it comes, ``PPO("MultiInputPolicy", env, seed=seed)`` on the bare
`CityEnv`: its Gaussian is sampled then clipped into the env's [0, 1] Box, 2048-step
rollouts (10 updates in 20k steps), gamma 0.99 over 96-step days, no normalisation.

``tuned`` (`tuned_sb3_config`) is what RL Zoo would run on this env: `SoftmaxActions`, so
the Gaussian on [-1, 1]^K is a proper parameterisation of the budget split; observations
and rewards normalised by `VecNormalize` (the reward is a cost in money of about -1 per
step, the features are on [0, 10]); a discount and rollout length that fit a 96-step day;
orthogonal initialisation with a small action std. Its figures are in `SB3Config`'s doc.

SB3 is the optional ``sb3`` extra; it is imported inside the functions that use it, so
this module imports without it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError

MODEL_NAME = "sb3_model.zip"
VECNORM_NAME = "sb3_vecnormalize.pkl"
META_NAME = "sb3_meta.json"


def softmax_weights(action: np.ndarray, temperature: float) -> np.ndarray:
    """Budget weights ``softmax(action * temperature)`` (K,), float64, summing to 1.

    >>> softmax_weights(np.array([1.0, 0.0, -1.0]), np.log(2.0)).round(4).tolist()
    [0.5714, 0.2857, 0.1429]
    """
    logits = np.asarray(action, dtype=np.float64) * temperature
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


def action_temperature(num_slots: int) -> float:
    """``ln K``: the [-1, 1] range then spans log-weights ``±ln K``.

    All slots at 0 is the even split (each slot 1/K, nearly the uniform baseline); one slot
    at +1 with the others at -1 takes ``K^2 / (K^2 + K - 1)`` of the budget (99.6% on
    downtown, K = 226), so the policy can put the whole budget on one node or leave it all
    unused; and a unit of action moves a slot's share by a factor K, the same on any city.
    A fixed temperature (say 1) would cap the best slot's share at ``e^2 / (e^2 + K - 1)``,
    3% on downtown: the clipped Gaussian could express nothing but near-uniform splits.
    """
    return float(np.log(max(num_slots, 2)))


class SoftmaxActions(gymnasium.ActionWrapper):
    """A `CityEnv` whose action is K values in [-1, 1], played as weights
    ``softmax(a * temperature)`` (`action_temperature`: ``ln K``)."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        shape = env.action_space.shape
        if shape is None or len(shape) != 1:
            raise SimcityError(
                f"has shape {shape}", field="action_space", expected="a 1-D Box of K weights"
            )
        self.temperature = action_temperature(shape[0])
        self.action_space = spaces.Box(-1.0, 1.0, shape, np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        return softmax_weights(np.clip(action, -1.0, 1.0), self.temperature)


@dataclass(frozen=True)
class SB3Config:
    """Tuned PPO settings for `CityEnv` (`tuned_sb3_config`), in RL Zoo's terms.

    Starting point: RL Zoo's ``hyperparams/ppo.yml`` for continuous control (``normalize:
    true``, ``ortho_init``, ``log_std_init`` below 0, ``n_epochs: 10``, a linear learning
    rate) and SB3's own PPO defaults where they suit (clip 0.2, vf_coef 0.5, max_grad_norm
    0.5, ent_coef 0: a continuous action's entropy bonus mostly inflates the std).
    The learning rate (1e-4, RL Zoo's range 1e-5 to 1e-3) and the action std (e^-2) were
    picked on validation days, with gamma, among six settings: the smallest steps did least
    harm (`agents.references.sb3_tuning`, figures there).
    The day (`simcity.env`) is 96 steps of 15 min and detection pays within the hour or two
    an incident lasts, so ``gamma`` 0.95 (horizon 1 / (1 - gamma) = 20 steps, 5 h: a
    morning's allocation is scored on that morning, not on the evening peak) and
    ``gae_lambda`` 0.9. A rollout is one day of each of 4 envs (384 steps: 53 updates in
    20k steps, not SB3's 10); minibatches of 64, 10 epochs. The 4 envs step in this
    process (``DummyVecEnv``): with worker processes (``SubprocVecEnv``) 1,920 steps of
    downtown ran at 71 and 45 env steps/s, in-process at 95 and 88 (two runs each,
    alternating, on the 2 shared cores): the pipes cost more than the second core gives.
    """

    n_envs: int = 4
    subprocess: bool = False  # DummyVecEnv; SubprocVecEnv measured slower on 2 shared cores
    n_steps: int = 96  # per env per rollout: one day
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.95
    gae_lambda: float = 0.9
    learning_rate: float = 1e-4  # annealed linearly to 0 over the run
    ent_coef: float = 0.0
    clip_range: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: tuple[int, ...] = (256, 256)  # separate actor and critic MLPs of this shape
    ortho_init: bool = True
    log_std_init: float = -2.0  # std e^-2 = 0.14: log-weight noise 0.14 ln K (0.73 downtown)
    norm_obs: bool = True
    norm_reward: bool = True
    clip_obs: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)  # any other PPO keyword

    def ppo_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``stable_baselines3.PPO`` (but the policy and env)."""
        import torch

        return {
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "learning_rate": partial(_linear, self.learning_rate),
            "ent_coef": self.ent_coef,
            "clip_range": self.clip_range,
            "vf_coef": self.vf_coef,
            "max_grad_norm": self.max_grad_norm,
            "policy_kwargs": {
                "net_arch": {"pi": list(self.net_arch), "vf": list(self.net_arch)},
                "activation_fn": torch.nn.Tanh,
                "ortho_init": self.ortho_init,
                "log_std_init": self.log_std_init,
            },
            **self.extra,
        }


def _linear(start: float, progress_remaining: float) -> float:
    """SB3's schedule convention: progress_remaining goes 1 -> 0 over the run."""
    return start * progress_remaining


def tuned_sb3_config(**changes: Any) -> SB3Config:
    """The tuned settings (`SB3Config`), with ``changes`` applied (for tuning)."""
    return dataclasses.replace(SB3Config(), **changes)


def _scenario(scenario: str | Path | Scenario) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def make_tuned_venv(scenario: Scenario, config: SB3Config) -> Any:
    """``config.n_envs`` `SoftmaxActions` envs on one city, under `VecNormalize`."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    city = CityEnv(scenario).city
    factories: list[Callable[[], gymnasium.Env]] = [
        partial(_softmax_env, scenario, city) for _ in range(config.n_envs)
    ]
    venv = SubprocVecEnv(factories) if config.subprocess else DummyVecEnv(factories)
    return VecNormalize(
        venv,
        norm_obs=config.norm_obs,
        norm_reward=config.norm_reward,
        clip_obs=config.clip_obs,
        gamma=config.gamma,
    )


def _softmax_env(scenario: Scenario, city: Any) -> SoftmaxActions:
    return SoftmaxActions(CityEnv(scenario, city=city))


def train_sb3(
    scenario: str | Path | Scenario,
    steps: int,
    out_dir: str | Path,
    *,
    tuned: bool,
    seed: int = 0,
    config: SB3Config | None = None,
) -> dict[str, Any]:
    """Train SB3 PPO for ``steps`` env steps; save the model (``sb3_model.zip``), with
    ``tuned`` its `VecNormalize` statistics (``sb3_vecnormalize.pkl``), and ``sb3_meta.json``.

    ``tuned``: `tuned_sb3_config` (or ``config``); otherwise SB3's defaults on the bare env.
    Returns ``steps`` (env steps played: whole rollouts, so at least ``steps``), ``wall_s``
    (``learn`` alone, env included) and ``steps_per_s``.
    """
    import stable_baselines3 as sb3
    import torch

    torch.set_num_threads(1)
    scenario = _scenario(scenario)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tuned:
        config = config or tuned_sb3_config()
        venv = make_tuned_venv(scenario, config)
        model = sb3.PPO(
            "MultiInputPolicy", venv, seed=seed, device="cpu", verbose=0, **config.ppo_kwargs()
        )
        # The env bills the network's own FLOPs, as it will when the policy is evaluated.
        flops = count_flops(model, venv.observation_space)
        venv.env_method("set_wrapper_attr", "policy_flop_per_decision", float(flops))
    else:
        venv = CityEnv(scenario)  # exactly bench/learning.py's setup before issue 19
        model = sb3.PPO("MultiInputPolicy", venv, seed=seed, device="cpu", verbose=0)
    started = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - started
    model.save(out / MODEL_NAME)
    if tuned:
        venv.save(str(out / VECNORM_NAME))
    meta = {
        "variant": "tuned" if tuned else "defaults",
        "scenario": scenario.name,
        "seed": seed,
        "steps": int(model.num_timesteps),
        "config": dataclasses.asdict(config) if tuned and config else None,
    }
    (out / META_NAME).write_text(json.dumps(meta, indent=2, default=str) + "\n")
    venv.close()
    played = int(model.num_timesteps)
    return {"steps": played, "wall_s": wall, "steps_per_s": played / wall}


def count_flops(model: Any, observation_space: spaces.Dict) -> int:
    """FLOPs of one deterministic decision: what ``model.predict`` runs (feature
    flattening, the actor MLP and the action head; not the critic), counted by torch's
    ``FlopCounterMode`` as for our policy. The observation normalisation and the softmax,
    O(N F + K) each, are left out, as bench/learning.py leaves them out."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    zeros = {
        key: np.zeros(space.shape or (), np.float32) for key, space in observation_space.items()
    }
    tensor_obs, _ = model.policy.obs_to_tensor(zeros)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.policy._predict(tensor_obs, deterministic=True)
    return int(counter.get_total_flops())


class SB3Policy:
    """A model saved by `train_sb3`, behind `agents.policies.protocol.Policy`: deterministic
    (the Gaussian's mean), observations normalised by the run's saved `VecNormalize`
    statistics, actions mapped as in training (`SoftmaxActions` for ``tuned``)."""

    def __init__(self, run_dir: str | Path, env: gymnasium.Env) -> None:
        import stable_baselines3 as sb3
        from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

        run_dir = Path(run_dir)
        meta_path = run_dir / META_NAME
        if not meta_path.is_file():
            raise SimcityError(
                "has no SB3 run", file=str(run_dir), expected=f"{META_NAME} from train_sb3"
            )
        meta = json.loads(meta_path.read_text())
        self.tuned = meta["variant"] == "tuned"
        self.name = "sb3_tuned" if self.tuned else "sb3_defaults"
        self.model = sb3.PPO.load(run_dir / MODEL_NAME, device="cpu")
        self.vecnorm: Any = None
        self.temperature = 1.0
        action_space = env.action_space
        if self.tuned:
            wrapped = SoftmaxActions(env)
            self.temperature, action_space = wrapped.temperature, wrapped.action_space
            self.vecnorm = VecNormalize.load(
                str(run_dir / VECNORM_NAME), DummyVecEnv([lambda: wrapped])
            )
            self.vecnorm.training = False  # frozen statistics
            self.vecnorm.norm_reward = False
        if self.model.action_space.shape != action_space.shape:
            raise SimcityError(
                f"acts on {self.model.action_space.shape}",
                file=str(run_dir / MODEL_NAME),
                expected=f"the env's {env.action_space.shape} action slots",
            )
        obs_space = env.observation_space
        assert isinstance(obs_space, spaces.Dict)
        self.flops_per_decision = float(count_flops(self.model, obs_space))

    def reset(self, seed: int | None) -> None:
        """Nothing to reset: deterministic and memoryless."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Weights (K,) for ``obs``, float64."""
        if self.vecnorm is not None:
            obs = self.vecnorm.normalize_obs(obs)
        action, _ = self.model.predict(obs, deterministic=True)
        if self.tuned:
            return softmax_weights(action, self.temperature)
        return np.asarray(action, dtype=np.float64)
