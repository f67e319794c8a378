"""Checks on the run state a resume restores: Adam's state, RNG states, running numbers.

A checkpoint's weights are checked when it is loaded (`agents.policies.checkpoint`); what
only a resume reads is checked here, against the objects it is restored into, so a damaged
or foreign file gives one `SimcityError` naming the file and the field instead of a
``KeyError`` or ``TypeError`` from inside ``torch.optim`` or ``torch.set_rng_state``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agents.policies.checks import check_dict, check_finite, check_number
from simcity.errors import SimcityError
from simcity.safe_io import excerpt

_ADAM_STATE = ("step", "exp_avg", "exp_avg_sq")


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, raw: Any, *, file: Path, field: str
) -> None:
    """Check ``raw`` against ``optimizer`` (an Adam built as the run builds it) and load it.

    The param groups must hold the same parameters and settings (the learning rate, which
    the run sets every update, may differ); each parameter's state is Adam's ``step``,
    ``exp_avg`` and ``exp_avg_sq``, of the parameter's shape and dtype, finite, the second
    moment not negative. A parameter without state (never stepped) is allowed.
    """
    raw = check_dict(raw, file=file, field=field)
    if set(raw) != {"state", "param_groups"}:
        raise SimcityError(
            f"has keys {excerpt(sorted(raw))}",
            file=file,
            field=field,
            expected="an optimizer state_dict: state and param_groups",
        )
    reference = optimizer.state_dict()
    groups = raw["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(reference["param_groups"]):
        raise SimcityError(
            f"is {excerpt(groups)}",
            file=file,
            field=f"{field}.param_groups",
            expected=f"a list of {len(reference['param_groups'])} group(s)",
        )
    for index, (ref, group) in enumerate(zip(reference["param_groups"], groups, strict=True)):
        where = f"{field}.param_groups[{index}]"
        group = check_dict(group, file=file, field=where)
        unknown = sorted(set(group) - set(ref))
        if unknown:
            raise SimcityError(f"has unknown settings {excerpt(unknown)}", file=file, field=where)
        for key, value in group.items():
            if key == "lr":
                check_number(value, file=file, field=f"{where}.lr", low=0.0)
            elif not same_settings(value, ref[key]):
                raise SimcityError(
                    f"is {excerpt(value)}",
                    file=file,
                    field=f"{where}.{key}",
                    expected=f"{excerpt(ref[key])}, as the run sets it",
                )
    shapes = {
        index: param
        for group, ref in zip(optimizer.param_groups, reference["param_groups"], strict=True)
        for index, param in zip(ref["params"], group["params"], strict=True)
    }
    state = raw["state"]
    if not isinstance(state, dict):
        raise SimcityError(
            f"is a {type(state).__name__}", file=file, field=f"{field}.state", expected="a dict"
        )
    for index, entry in state.items():
        where = f"{field}.state[{excerpt(index)}]"
        if isinstance(index, bool) or not isinstance(index, int) or index not in shapes:
            raise SimcityError(
                "names no parameter", file=file, field=where, expected=f"0..{len(shapes) - 1}"
            )
        _check_adam_entry(entry, shapes[index], file=file, field=where)
    try:
        optimizer.load_state_dict(raw)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as err:
        raise SimcityError(excerpt(err, 120), file=file, field=field) from None


def _check_adam_entry(entry: Any, param: torch.Tensor, *, file: Path, field: str) -> None:
    entry = check_dict(entry, file=file, field=field)
    if set(entry) != set(_ADAM_STATE):
        raise SimcityError(
            f"has keys {excerpt(sorted(entry))}", file=file, field=field, expected=str(_ADAM_STATE)
        )
    step = entry["step"]
    if not (isinstance(step, torch.Tensor) and step.dtype == torch.float32 and step.ndim == 0):
        raise SimcityError(
            f"is {excerpt(step)}", file=file, field=f"{field}.step", expected="a float32 scalar"
        )
    count = float(step)
    if not (count >= 1.0 and count.is_integer() and count < 2**53):
        raise SimcityError(
            f"is {count}", file=file, field=f"{field}.step", expected="a whole count >= 1"
        )
    for key in ("exp_avg", "exp_avg_sq"):
        value = entry[key]
        if not (
            isinstance(value, torch.Tensor)
            and value.layout == torch.strided
            and value.dtype == param.dtype
            and value.shape == param.shape
        ):
            raise SimcityError(
                f"is {excerpt(value if not isinstance(value, torch.Tensor) else value.shape)}",
                file=file,
                field=f"{field}.{key}",
                expected=f"{param.dtype} of shape {tuple(param.shape)}",
            )
        check_finite(value, file=file, field=f"{field}.{key}")
    if bool((entry["exp_avg_sq"] < 0).any()):
        raise SimcityError(
            "has negative values", file=file, field=f"{field}.exp_avg_sq", expected=">= 0"
        )


def same_settings(value: Any, reference: Any) -> bool:
    """Whether stored settings ``value`` equal ``reference`` (plain data: dicts, lists,
    tuples, numbers, strings, bools, None), never asking a tensor for its truth value:
    anything else in the file is unequal."""
    if isinstance(reference, dict):
        return (
            isinstance(value, dict)
            and value.keys() == reference.keys()
            and all(same_settings(value[k], reference[k]) for k in reference)
        )
    if isinstance(reference, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(reference)
            and all(same_settings(v, r) for v, r in zip(value, reference, strict=True))
        )
    if reference is None or isinstance(reference, bool):
        return value is reference
    if isinstance(reference, str):
        return isinstance(value, str) and value == reference
    if isinstance(reference, int | float):
        return not isinstance(value, bool) and isinstance(value, int | float) and value == reference
    return False


def check_rng_state(raw: Any, reference: torch.Tensor, *, file: Path, field: str) -> torch.Tensor:
    """``raw`` if it is a generator state like ``reference`` (uint8, the same length)."""
    if not (
        isinstance(raw, torch.Tensor)
        and raw.layout == torch.strided
        and raw.dtype == torch.uint8
        and raw.shape == reference.shape
    ):
        got = f"{raw.dtype} {tuple(raw.shape)}" if isinstance(raw, torch.Tensor) else excerpt(raw)
        raise SimcityError(
            f"is {got}",
            file=file,
            field=field,
            expected=f"a torch generator state (uint8 of shape {tuple(reference.shape)})",
        )
    return raw.contiguous()


def set_generator_state(generator: torch.Generator, raw: Any, *, file: Path, field: str) -> None:
    """Restore ``generator`` (torch's default one too) from a checked state ``raw``."""
    state = check_rng_state(raw, generator.get_state(), file=file, field=field)
    try:
        generator.set_state(state)
    except (RuntimeError, ValueError, TypeError) as err:
        raise SimcityError(
            excerpt(err, 120), file=file, field=field, expected="a torch generator state"
        ) from None


def check_running_std(raw: Any, *, file: Path, field: str) -> tuple[float, float, float]:
    """A `agents.training.ppo_math.RunningStd` state: (count >= 0, mean, m2 >= 0), finite."""
    if not isinstance(raw, list | tuple) or len(raw) != 3:
        raise SimcityError(
            f"is {excerpt(raw)}", file=file, field=field, expected="(count, mean, m2)"
        )
    count = check_number(raw[0], file=file, field=f"{field}[0]", low=0.0)
    mean = check_number(raw[1], file=file, field=f"{field}[1]")
    m2 = check_number(raw[2], file=file, field=f"{field}[2]", low=0.0)
    return count, mean, m2


def check_tensor(
    raw: Any, shape: tuple[int, ...], dtype: torch.dtype, *, file: Path, field: str
) -> torch.Tensor:
    """``raw`` if it is a finite ``dtype`` tensor of ``shape``, else a `SimcityError`."""
    if not (
        isinstance(raw, torch.Tensor)
        and raw.layout == torch.strided
        and raw.dtype == dtype
        and tuple(raw.shape) == shape
    ):
        got = f"{raw.dtype} {tuple(raw.shape)}" if isinstance(raw, torch.Tensor) else excerpt(raw)
        raise SimcityError(
            f"is {got}", file=file, field=field, expected=f"{dtype} of shape {shape}"
        )
    check_finite(raw, file=file, field=field)
    return raw
