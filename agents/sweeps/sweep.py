"""Sweeps: grids of scenario x policy x seed x scenario overrides, one run per cell.

A sweep file (TOML)::

    name = "small"                          # optional; default: the file's stem
    scenarios = ["tiny", "cities/my.toml"]  # bundled names or files (relative to this file)
    policies = ["uniform", "risk", "runs/ppo/checkpoint.pt"]  # baselines or checkpoints
    seeds = { first = 0, count = 4 }        # or a list: [0, 1, 7]
    episodes = 1                            # per run: episode k plays seed + k
    timeout_s = 600                         # optional: an attempt past it is killed, retried

    [grid]                                  # dotted scenario keys: a list is an axis,
    "reward.carbon_weight" = [0, 1, 10]     # one value is set in every run
    "time.num_steps" = 24

Every combination is a run (`RunSpec`), numbered in the order scenario, policy, grid
(file order, last key fastest), seed. A run is ``simcity run SCENARIO --policy POLICY
--seed SEED --episodes EPISODES`` on the scenario with the overrides applied
(`simcity.config.overrides`), a checkpoint's FLOPs per decision billed; its result is the mean
over its episodes of every KPI of `agents.training.evaluate.episode_summary`. `run_one` is pure,
so a run gives the same numbers bit for bit in any process, on any backend, whatever ran
there before (runs in one process share a city's memoised traffic day, for speed only).

`agents.sweeps.run.run_sweep` runs the runs in local processes or on Ray
(`agents.sweeps.backends`); a run whose worker dies is retried and its attempts recorded.
`agents.sweeps.results` writes one row per run, sorted by run id, to ``results.csv`` and
``results.json``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import tomllib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.policies.baselines import BASELINES, make_baseline
from agents.policies.protocol import Policy
from agents.training.evaluate import run_episode
from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.config.overrides import override_scenario
from simcity.config.scenario import Scenario, bundled_dir, bundled_scenarios, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError
from simcity.safe_io import SCENARIO_MAX_BYTES, read_text

Backend = Literal["process", "ray"]
Status = Literal["ok", "error", "failed", "timeout"]
MAX_SEEDS = 1_000_000
MAX_RUNS = 1_000_000
"""The most runs a sweep may have: a bigger grid is refused before it is expanded."""
MAX_TIMEOUT_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Sweep:
    """A grid of runs; `load_sweep` reads one from a file, or build one in Python.

    ``grid`` holds (dotted scenario key, values) axes. Relative scenario, checkpoint and
    override paths resolve against ``base_dir``; ``file`` names the sweep in errors.
    """

    scenarios: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    episodes: int = 1
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    name: str = "sweep"
    base_dir: Path = field(default_factory=Path.cwd)
    file: Path | None = None
    timeout_s: float | None = None
    """Seconds an attempt of a run may take before its worker is killed (None: no limit)."""


@dataclass(frozen=True)
class RunSpec:
    """One run: what the sweep file says, and where its scenario and policy come from."""

    run_id: int
    scenario: str  # as the sweep names it
    policy: str
    seed: int
    episodes: int
    overrides: tuple[tuple[str, Any], ...]
    scenario_source: str  # a bundled name or an absolute path
    policy_source: str  # a baseline name or an absolute checkpoint path
    base_dir: Path  # where relative paths among the overrides resolve


@dataclass(frozen=True)
class RunResult:
    """A run's outcome: ``ok`` (``kpis`` holds its means), ``error`` (the run raised:
    not retried, it would raise again), ``failed`` (its worker died on every attempt) or
    ``timeout`` (its last attempt ran past the sweep's ``timeout_s`` and was killed)."""

    spec: RunSpec
    status: Status = "ok"
    attempts: int = 1
    failures: tuple[str, ...] = ()
    """One line per failed attempt."""
    kpis: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class _SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="", max_length=80)
    scenarios: tuple[str, ...] = Field(min_length=1)
    policies: tuple[str, ...] = Field(min_length=1)
    seeds: tuple[Annotated[int, Field(ge=0, lt=2**63, strict=True)], ...] = Field(min_length=1)
    episodes: Annotated[int, Field(ge=1, le=10_000)] = 1
    timeout_s: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)] | None = None
    grid: dict[str, Any] = Field(default_factory=dict)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_range(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        first, count = value.get("first", 0), value.get("count", 0)
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (first, count))
        if set(value) - {"first", "count"} or not ints or not 1 <= count <= MAX_SEEDS:
            raise ValueError(f"expected {{first = S, count = N}} with 1 <= N <= {MAX_SEEDS}")
        return tuple(range(first, first + count))


def bundled_sweeps() -> dict[str, Path]:
    """Bundled example sweep names and their files."""
    return {p.stem: p for p in sorted((bundled_dir() / "sweeps").glob("*.toml"))}


def load_sweep(name_or_path: str | Path) -> Sweep:
    """Read a sweep file (or a bundled sweep by name); `SimcityError` names file and field."""
    path = Path(name_or_path)
    if not path.exists() and str(name_or_path) in bundled_sweeps():
        path = bundled_sweeps()[str(name_or_path)]
    expected = "a TOML file or one of: " + ", ".join(bundled_sweeps())
    if not path.exists() and not path.is_symlink():
        raise SimcityError("no such sweep file", file=path, expected=expected)
    text = read_text(path, expected=expected, max_bytes=SCENARIO_MAX_BYTES)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SimcityError(f"not valid TOML: {err}", file=path) from None
    except RecursionError:
        raise SimcityError("not valid TOML: nested too deeply", file=path) from None
    try:
        parsed = _SweepFile.model_validate(raw)
    except ValidationError as err:
        error = err.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "<top>"
        message = "unknown key" if error["type"] == "extra_forbidden" else str(error["msg"])
        raise SimcityError(message.removeprefix("Value error, "), file=path, field=where) from None
    grid = []
    for key, values in _flatten(parsed.grid):
        axis = tuple(values) if isinstance(values, list) else (values,)
        if not axis:
            raise SimcityError("no values", file=path, field=f"grid.{key}", expected="a value")
        grid.append((key, axis))
    return Sweep(
        scenarios=parsed.scenarios,
        policies=parsed.policies,
        seeds=parsed.seeds,
        episodes=parsed.episodes,
        grid=tuple(grid),
        name=parsed.name or path.stem,
        base_dir=path.resolve().parent,
        file=path,
        timeout_s=parsed.timeout_s,
    )


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys of nested tables: ``[grid.reward]`` + ``carbon_weight`` is
    ``"reward.carbon_weight"``. A list (an axis) is a leaf, even a list of tables."""
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _where(sweep: Sweep) -> str | Path:
    return sweep.file if sweep.file is not None else f"sweep {sweep.name}"


def expand(sweep: Sweep) -> list[RunSpec]:
    """Every run of ``sweep``, numbered from 0; checks every name, file, key and value first.

    Each grid combination is applied to each scenario once here, so a bad key or value is
    one `SimcityError` naming the sweep file and the key before anything runs.
    """
    where = _where(sweep)
    check_grid_size(sweep)
    for section, entries in (
        ("scenarios", sweep.scenarios),
        ("policies", sweep.policies),
        ("seeds", sweep.seeds),
    ):
        counts = Counter(entries)  # linear: a million seeds are checked at once
        twice = sorted(str(e) for e, n in counts.items() if n > 1)
        if twice:
            raise SimcityError(f"{twice[0]} is listed twice", file=where, field=section)
    scenarios = [_scenario_source(sweep, i, entry) for i, entry in enumerate(sweep.scenarios)]
    policies = [_policy_source(sweep, i, entry) for i, entry in enumerate(sweep.policies)]
    keys = [key for key, _ in sweep.grid]
    combos = list(itertools.product(*(values for _, values in sweep.grid)))
    for entry, source in zip(sweep.scenarios, scenarios, strict=True):
        scenario = load_scenario(source)
        for combo in combos:
            try:
                override_scenario(scenario, zip(keys, combo, strict=True), base_dir=sweep.base_dir)
            except SimcityError as err:
                raise SimcityError(
                    f"{err.message} (in scenario {entry})",
                    file=where,
                    field=f"grid.{err.field}",
                    expected=err.expected,
                ) from None
    cells = itertools.product(
        zip(sweep.scenarios, scenarios, strict=True),
        zip(sweep.policies, policies, strict=True),
        combos,
        sweep.seeds,
    )
    return [
        RunSpec(
            run_id=run_id,
            scenario=scenario[0],
            policy=policy[0],
            seed=seed,
            episodes=sweep.episodes,
            overrides=tuple(zip(keys, combo, strict=True)),
            scenario_source=scenario[1],
            policy_source=policy[1],
            base_dir=sweep.base_dir,
        )
        for run_id, (scenario, policy, combo, seed) in enumerate(cells)
    ]


def grid_size(sweep: Sweep) -> int:
    """How many runs ``sweep`` has, counted without expanding it."""
    axes = [len(values) for _, values in sweep.grid]
    return math.prod([len(sweep.scenarios), len(sweep.policies), len(sweep.seeds), *axes])


def check_grid_size(sweep: Sweep, limit: int = MAX_RUNS) -> None:
    """`SimcityError` when ``sweep`` has more than ``limit`` runs, before any is made."""
    size = grid_size(sweep)
    if size > limit:
        counts = " x ".join(
            f"{len(v)} {k}"
            for k, v in (
                ("scenarios", sweep.scenarios),
                ("policies", sweep.policies),
                ("seeds", sweep.seeds),
                *((f"grid.{key}", values) for key, values in sweep.grid),
            )
        )
        raise SimcityError(
            f"has {size:,} runs ({counts})",
            file=_where(sweep),
            field="grid",
            expected=f"at most {limit:,} runs (MAX_RUNS)",
        )


def _scenario_source(sweep: Sweep, index: int, entry: str) -> str:
    path = sweep.base_dir / entry
    if path.is_file():
        return str(path.resolve())
    if entry in bundled_scenarios():
        return entry
    raise SimcityError(
        f"no such scenario file or bundled scenario: {entry!r}",
        file=_where(sweep),
        field=f"scenarios[{index}]",
        expected="a TOML file (relative to the sweep file) or one of: "
        + ", ".join(bundled_scenarios()),
    )


def _policy_source(sweep: Sweep, index: int, entry: str) -> str:
    if entry in BASELINES:
        return entry
    path = sweep.base_dir / entry
    if path.is_file():
        from agents.policies.checkpoint import load_checkpoint

        load_checkpoint(path)  # a checkpoint that cannot be played fails now, not mid-sweep
        return str(path.resolve())
    raise SimcityError(
        f"no such baseline or checkpoint file: {entry!r}",
        file=_where(sweep),
        field=f"policies[{index}]",
        expected="one of " + ", ".join(BASELINES) + ", or a checkpoint.pt of simcity train",
    )


def run_one(spec: RunSpec) -> RunResult:
    """Play one run in this process: one `CityEnv`, its episodes, the mean of each KPI."""
    return RunResult(spec, kpis=play(spec))


def play(
    spec: RunSpec, on_step: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, float]:
    """The mean over ``spec``'s episodes of every episode-summary KPI."""
    scenario = override_scenario(
        load_scenario(spec.scenario_source), spec.overrides, base_dir=spec.base_dir
    )
    env = CityEnv(scenario, city=_city(scenario, spec.scenario_source))
    with _policy(spec, env) as policy:
        summaries = [
            run_episode(env, policy, spec.seed + k, on_step).summary for k in range(spec.episodes)
        ]
    return {key: float(np.mean([s[key] for s in summaries])) for key in summaries[0]}


_CITIES: OrderedDict[tuple[Any, ...], City] = OrderedDict()
_NOT_CITY = frozenset(
    {"title", "description", "time", "traffic", "energy", "weather", "carbon", "events"}
    | {"sensors", "incidents", "monitoring", "compute", "datacentre_carbon", "reward"}
)
"""Scenario fields `simcity.city.build.build_city` does not read; any other field keys a city."""
CITIES_KEPT = 2
"""Cities a process keeps for its next runs (the least recently used goes first)."""


def _city(scenario: Scenario, source: str) -> City:
    """The scenario's city, shared by the runs in this process that build the same one.

    They then share its memoised traffic day (`simcity.traffic.day`), a pure function of
    step and capacity cuts, so sharing changes no number, only the time: a later run of a
    city skips the day's equilibria that an earlier run solved.
    """
    fields = (name for name in type(scenario).model_fields if name not in _NOT_CITY)
    key = (*((name, getattr(scenario, name)) for name in fields), source)
    city = _CITIES.pop(key, None)
    if city is None:
        city = build_city(scenario, file=source)
    _CITIES[key] = city
    while len(_CITIES) > CITIES_KEPT:
        _CITIES.popitem(last=False)
    return city


@contextlib.contextmanager
def _policy(spec: RunSpec, env: CityEnv) -> Iterator[Policy]:
    """The run's policy; a checkpoint runs on one thread, so its numbers do not depend on
    the threads a worker happens to have."""
    if spec.policy_source in BASELINES:
        yield make_baseline(spec.policy_source, env, seed=spec.seed)
        return
    import torch

    from agents.policies.compressed import load_policy

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_policy(spec.policy_source, env, name="trained")
    finally:
        torch.set_num_threads(threads)
