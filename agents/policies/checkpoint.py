"""Checkpoints of a trained `AttentionPolicy`, and the `TrainedPolicy` that plays one.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(path, weights_only=True)``: no pickled classes, nothing executed on load. It is
written atomically (a temporary file in the same folder, then `os.replace`), so a run killed
mid-save leaves the previous checkpoint intact.

N nodes, F node features, G global features, K neighbours.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.policies.attention import (
    AttentionConfig,
    AttentionPolicy,
    count_flops_per_decision,
    mean_action,
)
from agents.policies.checks import (
    check_dict,
    check_gathered_size,
    check_int,
    check_like,
    check_model_config,
    read_torch_file,
)
from simcity.city.graph import City
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.safe_io import excerpt

CHECKPOINT_FORMAT = 2  # 2: logistic-normal actions, per-slot values
EXPECTED_FILE = "a checkpoint.pt written by `simcity train`"
_KEYS = ("model_config", "state_dict", "optimizer_state", "step", "update", "rng_states", "extra")


@dataclass(frozen=True)
class Checkpoint:
    """What `load_checkpoint` returns; ``state_dict`` is known to fit ``model_config``."""

    path: Path
    model_config: AttentionConfig
    state_dict: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]
    step: int  # env steps collected so far, over all envs
    update: int  # PPO updates done so far
    rng_states: dict[str, Any]
    extra: dict[str, Any]

    def build_model(self) -> AttentionPolicy:
        """A fresh `AttentionPolicy` holding the checkpoint's weights, in eval mode."""
        model = AttentionPolicy(self.model_config)
        model.load_state_dict(self.state_dict)
        return model.eval()


def save_checkpoint(
    path: str | Path,
    *,
    model_config: AttentionConfig,
    state_dict: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    step: int,
    update: int,
    rng_states: dict[str, Any],
    extra: dict[str, Any],
) -> Path:
    """Write a checkpoint atomically to ``path`` and return it.

    ``rng_states`` and ``extra`` must hold only what ``weights_only`` loading accepts:
    tensors, numbers, strings, bools, None, and lists, tuples and dicts of those.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": dataclasses.asdict(model_config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "optimizer_state": optimizer_state,
        "step": int(step),
        "update": int(update),
        "rng_states": rng_states,
        "extra": extra,
    }
    return save_torch_atomic(payload, path)


def save_torch_atomic(payload: dict[str, Any], path: Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, synced, then renamed onto it."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as tmp:
            torch.save(payload, tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path, *, expected_config: AttentionConfig | None = None
) -> Checkpoint:
    """Read and check a checkpoint written by `save_checkpoint`.

    The file is read through `simcity.safe_io` (a regular file of bounded size) and every
    field is checked (`agents.policies.checks`) before a network is built; the optimizer and
    RNG states are checked by the resume that restores them (`agents.training.resume`).

    Raises:
        SimcityError: the file is missing or unreadable, lacks a field, its model config is
            not a valid `AttentionConfig`, its weights do not fit that config or are not
            finite, or (when given) its config differs from ``expected_config``.
    """
    path = Path(path)
    raw = read_torch_file(path, expected=EXPECTED_FILE, kind="checkpoint")
    if not isinstance(raw, dict):
        raise SimcityError("is not a checkpoint", file=path, expected="a dict of fields")
    for key in _KEYS:
        if key not in raw:
            raise SimcityError("missing", file=path, field=key, expected=EXPECTED_FILE)
    if type(raw.get("format")) is not int or raw.get("format") != CHECKPOINT_FORMAT:
        raise SimcityError(
            f"unknown format {excerpt(raw.get('format'))}",
            file=path,
            field="format",
            expected=str(CHECKPOINT_FORMAT),
        )
    model_config = check_model_config(raw["model_config"], file=path)
    if expected_config is not None and model_config != expected_config:
        raise SimcityError(
            f"is {dataclasses.asdict(model_config)}",
            file=path,
            field="model_config",
            expected=str(dataclasses.asdict(expected_config)),
        )
    reference = AttentionPolicy(model_config).state_dict()
    check_like(reference, raw["state_dict"], file=path, field="state_dict")
    return Checkpoint(
        path=path,
        model_config=model_config,
        state_dict=raw["state_dict"],
        optimizer_state=check_dict(raw["optimizer_state"], file=path, field="optimizer_state"),
        step=check_int(raw["step"], file=path, field="step"),
        update=check_int(raw["update"], file=path, field="update"),
        rng_states=check_dict(raw["rng_states"], file=path, field="rng_states"),
        extra=check_dict(raw["extra"], file=path, field="extra"),
    )


def city_neighbours(city: City, num_neighbours: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each node's K nearest nodes by free-flow travel time: (N, K) int64, (N, K) float32."""
    neighbours, distances = AttentionPolicy.graph_neighbours(
        city.link_tail, city.link_head, city.free_flow_time_min, city.num_nodes, num_neighbours
    )
    return torch.from_numpy(neighbours), torch.from_numpy(distances)


class TrainedPolicy:
    """A trained `AttentionPolicy` playing deterministically (softmax of its logits).

    Follows the `agents.policies.protocol.Policy` protocol. ``flops_per_decision`` is what one `act`
    costs; `agents.training.evaluate.run_episode` has the env bill it. ``device`` names the
    profile it runs on (None: the scenario's policy device) and ``latency_s`` its measured
    seconds per decision there (None: not measured; the env then models the time), and
    ``precision`` the number format it runs in, so the env can bill a decision as time x power
    where it really runs.
    """

    def __init__(
        self,
        model: AttentionPolicy,
        env: CityEnv,
        name: str = "trained",
        *,
        source: str | Path | None = None,
    ) -> None:
        require_tiers(model.config, env)
        check_gathered_size(
            model.config, env.city.num_nodes, file=None if source is None else Path(source)
        )
        self.name = name
        self.source = None if source is None else Path(source)  # the file it came from
        self.model = model.eval()
        self.neighbours, self.distances = city_neighbours(
            env.city, model.config.num_neighbours
        )  # (N, K), (N, K)
        self.num_nodes = env.city.num_nodes
        self.flops_per_decision = count_flops_per_decision(
            model, self.num_nodes, self.neighbours, self.distances
        )
        self.device: str | None = None
        self.latency_s: float | None = None
        self.precision = "fp32"

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint | str | Path, env: CityEnv) -> TrainedPolicy:
        """Load ``checkpoint`` (a `Checkpoint` or a path) and play it in ``env``'s city."""
        if not isinstance(checkpoint, Checkpoint):
            checkpoint = load_checkpoint(checkpoint)
        return cls(checkpoint.build_model(), env, source=checkpoint.path)

    def reset(self, seed: int | None) -> None:
        """Nothing to reset: the policy is deterministic and has no memory."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Action weights (N * T + 1,): the allocation at the mean log-weights."""
        nodes = torch.as_tensor(obs["nodes"], dtype=torch.float32).unsqueeze(0)  # (1, N, F)
        globals_ = torch.as_tensor(obs["globals"], dtype=torch.float32).unsqueeze(0)  # (1, G)
        with torch.no_grad():
            output = self.model(nodes, globals_, self.neighbours, self.distances)
            action = mean_action(output.logits)[0]  # (N * T + 1,)
        if not bool(torch.isfinite(output.logits).all()):
            # Weights can be finite yet overflow; the env must never see a NaN allocation.
            raise SimcityError(
                "gives allocation logits that are not finite",
                file=self.source,
                field="state_dict",
                expected="weights whose outputs are finite",
            )
        return action.numpy().astype(np.float64)


def require_tiers(config: AttentionConfig, env: CityEnv) -> None:
    """`SimcityError` unless a model of ``config`` allocates ``env``'s analytics tiers."""
    if config.num_tiers != env.num_tiers:
        raise SimcityError(
            f"the policy allocates {config.num_tiers} analytics tier(s), the scenario has "
            f"{env.num_tiers}",
            field="compute.tiers",
            expected=f"a policy trained on a scenario with {env.num_tiers} tier(s)",
        )
