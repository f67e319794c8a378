"""Checks on what a policy file holds, made before anything is built from it.

Checkpoints and compressed policy files are user input. Their bytes are read through
`simcity.safe_io.read_bytes` (a regular file, of bounded size) and unpickled with
``torch.load(weights_only=True)`` (no code runs); then every field is checked for type, range
and consistency, and every tensor for layout, dtype, shape and finiteness, before a network
is built or weights are loaded. A damaged or hostile file gives one `SimcityError` naming the
file and the field, never an exception from deep in torch, a hang or a huge allocation.

D model width, H heads, L layers, K neighbours, r MLP ratio, F node and G global features.
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from agents.policies.attention import PRIORS, AttentionConfig
from simcity.env import GLOBAL_FEATURES, NODE_FEATURES
from simcity.errors import SimcityError
from simcity.safe_io import DATA_MAX_BYTES, excerpt, read_bytes

POLICY_MAX_BYTES = DATA_MAX_BYTES
"""Largest policy or checkpoint file read (weights, Adam state and run state together)."""
MAX_PARAMETERS = 32 * 2**20
"""Largest network a file may describe: 32M parameters, 128 MB of fp32 weights (the shipped
policies have about 20k)."""
MAX_GATHERED = 2**28
"""Largest N x K x D of one decision (the gathered keys), so that playing a policy on a city
never asks for more than a GiB per tensor."""

_INT_RANGES = {
    "num_node_features": (len(NODE_FEATURES), len(NODE_FEATURES)),
    "num_global_features": (len(GLOBAL_FEATURES), len(GLOBAL_FEATURES)),
    "d_model": (1, 4096),
    "num_heads": (1, 256),
    "num_layers": (1, 64),
    "num_neighbours": (1, 256),
    "mlp_ratio": (1, 64),
    "num_tiers": (1, 16),
}
_FLOAT_RANGES = {"dropout": (0.0, 0.999), "init_log_std": (-20.0, 5.0)}


def read_torch_file(path: str | Path, *, expected: str, kind: str) -> Any:
    """The object in the torch file ``path`` (a ``kind`` file), loaded weights-only from
    bounded bytes."""
    try:
        data = read_bytes(path, expected=expected, max_bytes=POLICY_MAX_BYTES)
    except SimcityError as err:
        if err.message == "no such file":
            raise SimcityError(f"no such {kind} file", file=path, expected=expected) from None
        raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantised tensors warn about TypedStorage
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise SimcityError(
            f"cannot be read as a torch file ({type(err).__name__})", file=path, expected=expected
        ) from None


def check_int(value: Any, *, file: Path, field: str, low: int = 0, high: int = 2**62) -> int:
    """``value`` if it is an int (not a bool) in [low, high], else a `SimcityError`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SimcityError(
            f"is {excerpt(value)}",
            file=file,
            field=field,
            expected=f"an integer in [{low}, {high}]",
        )
    return value


def check_number(
    value: Any, *, file: Path, field: str, low: float = -math.inf, high: float = math.inf
) -> float:
    """``value`` as a float if it is a finite number in [low, high], else a `SimcityError`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SimcityError(
            f"is {excerpt(value)}", file=file, field=field, expected="a finite number"
        )
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise SimcityError(
            f"is {excerpt(value)}", file=file, field=field, expected=f"a number in [{low}, {high}]"
        )
    return number


def check_dict(value: Any, *, file: Path, field: str) -> dict[str, Any]:
    """``value`` if it is a dict with string keys, else a `SimcityError`."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SimcityError(
            f"is a {type(value).__name__}", file=file, field=field, expected="a dict of fields"
        )
    return value


def check_model_config(raw: Any, *, file: Path, field: str = "model_config") -> AttentionConfig:
    """The `AttentionConfig` that ``raw`` (a stored ``dataclasses.asdict``) describes.

    Every field is checked for type and range, the widths for consistency (``d_model``
    divisible by ``num_heads``), the feature counts against the env's observation, and the
    parameter count against `MAX_PARAMETERS`, before anything is built. Fields the file
    lacks take their defaults (files from before a field existed); unknown ones are refused.
    """
    raw = check_dict(raw, file=file, field=field)
    fields = {f.name: f for f in dataclasses.fields(AttentionConfig)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SimcityError(
            f"has unknown fields {excerpt(unknown)}",
            file=file,
            field=field,
            expected=f"fields of {sorted(fields)}",
        )
    values: dict[str, Any] = {}
    for name, value in raw.items():
        where = f"{field}.{name}"
        if name in _INT_RANGES:
            low, high = _INT_RANGES[name]
            values[name] = check_int(value, file=file, field=where, low=low, high=high)
        elif name in _FLOAT_RANGES:
            low_f, high_f = _FLOAT_RANGES[name]
            values[name] = check_number(value, file=file, field=where, low=low_f, high=high_f)
        elif name == "prior":
            if not (value is None or isinstance(value, str)) or value not in PRIORS:
                raise SimcityError(
                    f"is {excerpt(value)}", file=file, field=where, expected=f"one of {PRIORS}"
                )
            values[name] = value
        else:  # a field added later: the type of its default, at least
            values[name] = _like_default(value, fields[name].default, file=file, field=where)
    # Saved before the field existed: those networks learned without the offset.
    values.setdefault("size_agnostic_unused", False)
    d_model = values.get("d_model", fields["d_model"].default)
    num_heads = values.get("num_heads", fields["num_heads"].default)
    if d_model % num_heads:
        raise SimcityError(
            f"{num_heads} heads do not divide d_model {d_model}",
            file=file,
            field=f"{field}.num_heads",
            expected="a divisor of d_model",
        )
    try:
        config = AttentionConfig(**values)
    except (TypeError, ValueError, ArithmeticError) as err:
        raise SimcityError(excerpt(err, 120), file=file, field=field) from None
    num_params = parameter_count(config)
    if num_params > MAX_PARAMETERS:
        raise SimcityError(
            f"describes {num_params:,} parameters",
            file=file,
            field=field,
            expected=f"at most {MAX_PARAMETERS:,}",
        )
    return config


def _like_default(value: Any, default: Any, *, file: Path, field: str) -> Any:
    if isinstance(default, bool) or default is None or isinstance(default, str):
        ok = type(value) is type(default) or (default is None and isinstance(value, str))
    elif isinstance(default, int):
        return check_int(value, file=file, field=field, high=2**16)
    elif isinstance(default, float):
        return check_number(value, file=file, field=field)
    else:
        ok = False
    if not ok:
        raise SimcityError(
            f"is {excerpt(value)}", file=file, field=field, expected=type(default).__name__
        )
    return value


def parameter_count(config: AttentionConfig) -> int:
    """Parameters of `AttentionPolicy` ``config`` counted from its sizes (nothing is built)."""
    D, H, r = config.d_model, config.num_heads, config.mlp_ratio
    F, G, bias_hidden = config.num_node_features, config.num_global_features, 16
    embed = (F + 1) * D + (G + 1) * D
    attention = (D + 1) * 3 * D + (D + 1) * D + 2 * bias_hidden + (bias_hidden + 1) * H
    block = 4 * D + attention + (D + 1) * r * D + (r * D + 1) * D
    heads = 2 * D + 2 * (D + 1) + (D + 1) * D + D + 1 + 1
    return embed + config.num_layers * block + heads


def check_gathered_size(config: AttentionConfig, num_nodes: int, *, file: Path | None) -> None:
    """Refuse a policy whose one decision on ``num_nodes`` nodes gathers more than
    `MAX_GATHERED` values."""
    size = num_nodes * config.num_neighbours * config.d_model
    if size > MAX_GATHERED:
        raise SimcityError(
            f"would gather {size:,} values per decision on {num_nodes} nodes",
            file=file,
            field="model_config",
            expected=f"num_nodes x num_neighbours x d_model <= {MAX_GATHERED:,}",
        )


def check_like(reference: Any, value: Any, *, file: Path, field: str) -> None:
    """Raise `SimcityError` unless ``value`` has ``reference``'s structure: the same keys,
    types and lengths, tensors of its layout, dtype and shape, all finite (a quantised
    tensor: a finite, positive scale)."""
    if isinstance(reference, torch.Tensor):
        _check_tensor_like(reference, value, file=file, field=field)
    elif isinstance(reference, Mapping):
        if not isinstance(value, Mapping):
            raise SimcityError(
                f"is a {type(value).__name__}", file=file, field=field, expected="a dict"
            )
        missing = sorted(set(reference) - set(value), key=str)
        unexpected = sorted(set(value) - set(reference), key=str)
        if missing or unexpected:
            raise SimcityError(
                f"missing {excerpt(missing[:3])}, unexpected {excerpt(unexpected[:3])}",
                file=file,
                field=field,
                expected="the parameters of model_config's network",
            )
        for key, item in reference.items():
            check_like(item, value[key], file=file, field=f"{field}.{key}")
    elif isinstance(reference, tuple | list):
        if type(value) is not type(reference) or len(value) != len(reference):
            raise SimcityError(
                f"is {excerpt(type(value).__name__)}",
                file=file,
                field=field,
                expected=f"a {type(reference).__name__} of {len(reference)}",
            )
        for index, (ref, item) in enumerate(zip(reference, value, strict=True)):
            check_like(ref, item, file=file, field=f"{field}[{index}]")
    elif type(value) is not type(reference) or value != reference:
        raise SimcityError(
            f"is {excerpt(value)}", file=file, field=field, expected=excerpt(reference)
        )


def _check_tensor_like(reference: torch.Tensor, value: Any, *, file: Path, field: str) -> None:
    if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
        raise SimcityError(
            f"is {excerpt(type(value).__name__)}", file=file, field=field, expected="a tensor"
        )
    if value.dtype != reference.dtype or tuple(value.shape) != tuple(reference.shape):
        raise SimcityError(
            f"is {value.dtype} of shape {tuple(value.shape)}",
            file=file,
            field=field,
            expected=f"{reference.dtype} of shape {tuple(reference.shape)}",
        )
    check_finite(value, file=file, field=field)


def check_finite(value: torch.Tensor, *, file: Path, field: str) -> None:
    """Raise `SimcityError` if float tensor ``value`` holds NaN or infinity (a quantised one:
    if its scale is not finite and positive)."""
    if value.is_quantized:
        if value.qscheme() != torch.per_tensor_affine:
            raise SimcityError(
                f"is quantised {value.qscheme()}",
                file=file,
                field=field,
                expected="per-tensor affine",
            )
        scale = value.q_scale()
        if not (math.isfinite(scale) and scale > 0.0):
            raise SimcityError(
                f"has scale {scale}", file=file, field=field, expected="a finite scale > 0"
            )
    elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise SimcityError(
            "holds NaN or infinite values", file=file, field=field, expected="finite numbers"
        )
