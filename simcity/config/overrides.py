"""Scenario variants by dotted key: ``{"reward.carbon_weight": 10}`` on a `Scenario`.

Every section on the key's path is copied with the change and validated again (its field
types and limits, its own cross-field checks and those of every section above it), so a
variant is as valid as a scenario loaded from a file. Sweeps and Pareto fronts use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from simcity.config.reading import describe_error, quote
from simcity.config.scenario import Scenario
from simcity.errors import SimcityError


def override_scenario(
    scenario: Scenario, changes: Iterable[tuple[str, Any]], *, base_dir: Path | None = None
) -> Scenario:
    """``scenario`` with each dotted key set to its value, validated.

    Relative paths among the values resolve against ``base_dir`` (default: the current
    folder). Raises `SimcityError` naming the key for an unknown key, a key that does not
    lead to a section, or a value the field refuses.

    >>> from simcity.config.scenario import load_scenario
    >>> tiny = load_scenario("tiny")
    >>> variant = override_scenario(tiny, [("reward.carbon_weight", 10), ("time.num_steps", 8)])
    >>> variant.reward.carbon_weight, variant.time.num_steps, tiny.time.num_steps
    (10.0, 8, 96)
    """
    context = {"base_dir": base_dir if base_dir is not None else Path.cwd()}
    for key, value in changes:
        result = _set(scenario, key.split("."), value, (key, value), context)
        assert isinstance(result, Scenario)
        scenario = result
    return scenario


def _set(
    model: BaseModel,
    path: list[str],
    value: Any,
    change: tuple[str, Any],
    context: dict[str, Any],
) -> BaseModel:
    """A validated copy of ``model`` with the field at ``path`` set to ``value``.

    ``change`` is the whole key and value asked for, for error messages.
    """
    key, asked = change
    name, rest = path[0], path[1:]
    fields = type(model).model_fields
    if name not in fields:
        done = key[: len(key) - len(".".join(path))]
        raise SimcityError(
            "unknown scenario field",
            field=key,
            expected=f"one of {done}{{{', '.join(fields)}}}",
        )
    if rest:
        child = getattr(model, name)
        if not isinstance(child, BaseModel):
            what = "not set in this scenario" if child is None else "not a section"
            raise SimcityError(f"{name} is {what}", field=key, expected="a key inside a section")
        value = _set(child, rest, value, change, context)
    try:
        return type(model).model_validate({**dict(model), name: value}, context=context)
    except ValidationError as err:
        _, message = describe_error(err.errors()[0])
        if "(got " not in message:
            message += f" (got {quote(asked)})"
        raise SimcityError(message, field=key) from None
