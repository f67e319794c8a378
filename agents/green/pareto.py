"""Pareto fronts: service cost, compute carbon and money over carbon price, budget and model.

A point is one policy at one carbon price weight (``reward.carbon_weight``) and one
monitoring budget (``monitoring.budget_units``), its KPIs the mean over seeds of one day
each: service cost (incident damage + estimation-error cost, in money), compute kgCO2 and
money (the whole bill: service + compute energy + carbon cost x weight). Policies are the
heuristic baselines and trained checkpoints of different sizes (``simcity train``, or
``simcity compress --method distill|prune|int8``), whose real FLOPs per decision are billed.

`run_pareto` evaluates given checkpoints; it does not train. Training a point is
``simcity train SCENARIO`` on the scenario with the same overrides (a scenario file with
that ``[reward] carbon_weight`` and ``[monitoring] budget_units``): minutes to hours per
point, out of scope for a command that must finish in minutes. A checkpoint is told the
carbon weight of its point: the observation shows the carbon price times the scenario's
weight (`simcity.env.GLOBAL_FEATURES`), so a checkpoint trained over a range of weights
(``TrainConfig.carbon_weights``) moves along the front as the weight changes; one trained
at a single weight sees an input it never saw vary.

The runs are one sweep (`agents.sweeps`): `expand` checks the overrides, `run_sweep` plays
them on local processes or Ray, and each run is bit-for-bit the same on any backend.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.green.pareto_plot import front_png
from agents.sweeps.run import run_sweep
from agents.sweeps.sweep import Backend, RunResult, Sweep, expand
from simcity.city.build import build_city
from simcity.city.graph import City
from simcity.config.overrides import override_scenario
from simcity.config.scenario import Scenario, load_scenario
from simcity.env import CityEnv
from simcity.errors import SimcityError

OBJECTIVES: tuple[str, ...] = ("service_cost", "compute_kgco2", "money")
"""What the front minimises, every one in the points' own units (money, kg, money)."""
BASELINE_POINTS: tuple[str, ...] = ("uniform", "risk", "traffic", "population")
CARBON_KEY = "reward.carbon_weight"
BUDGET_KEY = "monitoring.budget_units"
KPI_COLUMNS: tuple[str, ...] = (
    "service_cost",
    "compute_kgco2",
    "money",
    "damage",
    "estimation_cost",
    "detection_rate",
    "compute_kwh",
    "compute_policy_kwh",
)


PARETO_RTOL = 1e-6
"""A point beats another on an objective only by more than this fraction of the largest
magnitude of that objective over the points (`objective_tolerances`): figures that differ
by float noise (a policy that leaves 1e-7 of its budget unused) are ties, not trade-offs."""


def objective_tolerances(values: np.ndarray, rtol: float = PARETO_RTOL) -> np.ndarray:
    """(k,) ties of ``values`` (n, k): ``rtol`` times each column's largest magnitude.

    >>> objective_tolerances(np.array([[4.0, -0.5], [1.0, 0.25]])).tolist()
    [4e-06, 5e-07]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return np.zeros(v.shape[-1] if v.ndim == 2 else 0)
    return rtol * np.abs(v).max(axis=0)


def pareto_mask(values: np.ndarray, tolerance: np.ndarray | float = 0.0) -> np.ndarray:
    """Which rows of ``values`` (n, k) are non-dominated, every column minimised.

    Row j dominates row i when it is no worse in every column and better in one, where
    "worse" and "better" mean by more than ``tolerance`` (a number, or one per column;
    0: exact). Rows within the tolerance in every column are ties and do not dominate each
    other; of such ties only the first that is not dominated is kept, so the front holds
    each objective vector once and does not depend on how many times a point was listed.
    O(n^2 k) memory and time.

    >>> pareto_mask(np.array([[1.0, 2.0], [2.0, 1.0], [2.0, 2.0], [1.0, 2.0]])).tolist()
    [True, True, False, False]
    >>> pareto_mask(np.array([[1.0, 2.0 + 1e-9], [1.5, 2.0]]), tolerance=1e-6).tolist()
    [True, False]
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values have shape {v.shape}; expected (points, objectives)")
    if not np.isfinite(v).all():
        raise ValueError("values contain NaN or infinite numbers")
    tol = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), v.shape[1:])
    if (tol < 0).any() or not np.isfinite(tol).all():
        raise ValueError(f"tolerance {tolerance!r} is not a finite number >= 0")
    no_worse = (v[:, None, :] <= v[None, :, :] + tol).all(axis=-1)  # (n, n): [j, i] j <= i
    better = (v[:, None, :] < v[None, :, :] - tol).any(axis=-1)  # (n, n): [j, i] j < i somewhere
    dominated = np.asarray((no_worse & better).any(axis=0))
    tied = no_worse & no_worse.T
    repeated = (np.triu(tied, k=1) & ~dominated[:, None]).any(axis=0)  # an earlier kept tie
    return np.logical_not(dominated | repeated)


def pareto_front(
    points: Sequence[dict[str, Any]],
    objectives: Sequence[str] = OBJECTIVES,
    rtol: float = PARETO_RTOL,
) -> list[dict[str, Any]]:
    """The non-dominated points (all ``objectives`` minimised, ties within ``rtol`` of each
    objective's largest magnitude, `objective_tolerances`), in their input order.

    >>> pts = [{"a": 1, "b": 3}, {"a": 2, "b": 2}, {"a": 2, "b": 3}, {"a": 1, "b": 3}]
    >>> pareto_front(pts, ["a", "b"])
    [{'a': 1, 'b': 3}, {'a': 2, 'b': 2}]
    """
    if not points:
        return []
    values = np.array([[float(p[key]) for key in objectives] for p in points])
    mask = pareto_mask(values, objective_tolerances(values, rtol))
    return [p for p, keep in zip(points, mask, strict=True) if keep]


@dataclass(frozen=True)
class PolicyInfo:
    """A policy of the front: its label, file (None for a baseline) and size."""

    label: str
    source: str
    num_params: int = 0
    flop_per_decision: float = 0.0

    @property
    def kind(self) -> str:
        return "baseline" if self.num_params == 0 else "policy"


@dataclass(frozen=True)
class ParetoResult:
    """Every point (one per policy, weight and budget) with its ``pareto`` flag, and the runs."""

    points: list[dict[str, Any]]
    runs: list[RunResult]
    tolerance: dict[str, float] = dataclasses.field(default_factory=dict)
    """Per objective, the difference below which two points tie (`objective_tolerances`)."""

    @property
    def front(self) -> list[dict[str, Any]]:
        return [p for p in self.points if p["pareto"]]


def parse_numbers(text: str, option: str) -> tuple[float, ...]:
    """``"10,20,40"`` as (10.0, 20.0, 40.0); `SimcityError` naming ``option`` otherwise."""
    expected = "comma-separated non-negative numbers, e.g. 10,20,40"
    try:
        numbers = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise SimcityError(f"is {text!r}", field=option, expected=expected) from None
    if not all(math.isfinite(x) and x >= 0 for x in numbers):
        raise SimcityError(f"is {text!r}", field=option, expected=expected)
    if len(set(numbers)) != len(numbers):
        raise SimcityError(f"repeats a value: {text!r}", field=option, expected=expected)
    return numbers


def run_pareto(
    scenario: str,
    checkpoints: Sequence[str | Path] = (),
    budgets: Sequence[float] = (10.0, 20.0, 40.0),
    carbon_weights: Sequence[float] = (0.0, 1.0, 10.0),
    num_seeds: int = 3,
    *,
    clairvoyant: bool = False,
    overrides: Sequence[tuple[str, Any]] = (),
    backend: Backend = "process",
    workers: int | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    on_specs: Callable[[int], None] | None = None,
) -> ParetoResult:
    """Play every baseline and checkpoint at every carbon weight and budget on seeds
    0..num_seeds-1; points are the means over seeds, flagged when on the front.

    ``overrides`` (dotted scenario keys) hold in every run, e.g. ``time.num_steps``.
    ``on_specs`` is told the number of runs before they start.
    """
    if num_seeds < 1:
        raise SimcityError(f"is {num_seeds}", field="--seeds", expected=">= 1")
    for option, values in (("--budgets", budgets), ("--carbon-weights", carbon_weights)):
        if not values:
            raise SimcityError("is empty", field=option, expected="at least one number")
    for index, path in enumerate(checkpoints):  # before any work, however cheap
        if not Path(path).is_file():
            raise SimcityError("no such checkpoint file", file=path, field=f"--checkpoint[{index}]")
    source = str(Path(scenario).resolve()) if Path(scenario).is_file() else scenario
    fixed = list(overrides)
    for key, _ in fixed:
        if key in (CARBON_KEY, BUDGET_KEY):
            raise SimcityError("is an axis of the front", field=key, expected="another key")
    base = override_scenario(load_scenario(source), fixed)
    city = build_city(base, file=source)
    check_axes(base, city, budgets, carbon_weights)
    baselines = BASELINE_POINTS + (("clairvoyant",) if clairvoyant else ())
    sweep = Sweep(
        scenarios=(source,),
        policies=baselines,
        seeds=tuple(range(num_seeds)),
        grid=(
            *((key, (value,)) for key, value in fixed),
            (CARBON_KEY, tuple(float(w) for w in carbon_weights)),
            (BUDGET_KEY, tuple(float(b) for b in budgets)),
        ),
        name="pareto",
    )
    specs = expand(sweep)
    infos = {name: PolicyInfo(name, name) for name in baselines}
    cells = [spec for spec in specs if spec.policy == baselines[0]]
    for index, path in enumerate(checkpoints):
        info = _checkpoint_info(Path(path), CityEnv(base, city=city), index, set(infos))
        infos[info.label] = info
        # `expand` takes only `simcity train` checkpoints; compressed files play too.
        specs += [
            dataclasses.replace(
                cell, run_id=len(specs) + k, policy=info.label, policy_source=info.source
            )
            for k, cell in enumerate(cells)
        ]
    if on_specs is not None:
        on_specs(len(specs))
    runs = run_sweep(specs, backend=backend, workers=workers, on_result=on_result)
    points = _points(runs, infos, city.num_nodes)
    candidates = [p for p in points if p["runs_ok"] == num_seeds]
    vectors = np.array([[float(p[key]) for key in OBJECTIVES] for p in candidates])
    ties = objective_tolerances(vectors) if candidates else np.zeros(len(OBJECTIVES))
    front = {id(p) for p in pareto_front(candidates, OBJECTIVES)}
    for point in points:
        point["pareto"] = id(point) in front
    return ParetoResult(points, runs, dict(zip(OBJECTIVES, map(float, ties), strict=True)))


def check_axes(
    base: Scenario, city: City, budgets: Sequence[float], carbon_weights: Sequence[float]
) -> None:
    """Refuse, before any run, an axis value the scenario cannot take (`SimcityError`
    naming the option): each value is set on ``base`` once (the scenario model's ranges),
    each budget bills a step that uses it all, and the dearest day's money must be finite."""
    bills = []
    for option, key, values in (
        ("--budgets", BUDGET_KEY, budgets),
        ("--carbon-weights", CARBON_KEY, carbon_weights),
    ):
        for value in values:
            try:
                variant = override_scenario(base, [(key, float(value))])
                if key == BUDGET_KEY:
                    env = CityEnv(variant, city=city)
                    env.reset(seed=0)
                    assert env.world is not None
                    bills.append(env.world.bill(0, env.budget_units))
            except SimcityError as err:
                raise SimcityError(
                    f"{value:g} cannot be played: {err.message}",
                    field=option,
                    expected=err.expected or "a value the scenario takes",
                ) from None
    steps = base.time.num_steps
    weight = max(carbon_weights)
    for bill, budget in zip(bills, budgets, strict=True):
        day = (bill.energy_cost + bill.carbon_cost * weight) * steps
        if not math.isfinite(day):
            raise SimcityError(
                f"{budget:g} at carbon weight {weight:g} makes a day's money overflow",
                field="--budgets",
                expected="smaller budgets or carbon weights",
            )


def _checkpoint_info(path: Path, env: CityEnv, index: int, taken: set[str]) -> PolicyInfo:
    """A checkpoint's label (its folder, or file stem, unique), size and FLOPs in ``env``."""
    from agents.policies.compressed import load_policy

    if not path.is_file():
        raise SimcityError("no such checkpoint file", file=path, field=f"--checkpoint[{index}]")
    policy = load_policy(path, env)
    generic = path.stem in ("checkpoint", "policy") and path.parent.name
    label = path.parent.name if generic else path.stem
    unique, k = label, 2
    while unique in taken:
        unique, k = f"{label}-{k}", k + 1
    return PolicyInfo(
        unique, str(path.resolve()), policy.cost.num_params, float(policy.flops_per_decision)
    )


def _points(
    runs: Sequence[RunResult], infos: dict[str, PolicyInfo], num_nodes: int
) -> list[dict[str, Any]]:
    """Mean KPIs over seeds for each (policy, carbon weight, budget), in run order."""
    groups: dict[tuple[str, float, float], list[RunResult]] = {}
    for run in runs:
        changes = dict(run.spec.overrides)
        key = (run.spec.policy, float(changes[CARBON_KEY]), float(changes[BUDGET_KEY]))
        groups.setdefault(key, []).append(run)
    points = []
    for (policy, weight, budget), group in groups.items():
        ok = [r for r in group if r.status == "ok"]
        info = infos[policy]
        point: dict[str, Any] = {
            "kind": info.kind,
            "policy": policy,
            "carbon_weight": weight,
            "budget_units": budget,
            "num_params": info.num_params,
            "flop_per_decision": info.flop_per_decision,
            "runs": len(group),
            "runs_ok": len(ok),
        }
        per_run = [_objectives(r, num_nodes) for r in ok]
        for column in KPI_COLUMNS:
            point[column] = float(np.mean([k[column] for k in per_run])) if per_run else math.nan
        points.append(point)
    return points


def _objectives(run: RunResult, num_nodes: int) -> dict[str, float]:
    """A run's KPIs with its estimation-error cost and service cost in money."""
    changes = dict(run.spec.overrides)
    scenario = override_scenario(
        load_scenario(run.spec.scenario_source), changes.items(), base_dir=run.spec.base_dir
    )
    kpis = run.kpis
    # episode_summary's estimation_error is the mean per step of the city's mean error
    estimation = (
        scenario.reward.estimation_cost
        * num_nodes
        * kpis["estimation_error"]
        * scenario.time.num_steps
    )
    return {
        **kpis,
        "estimation_cost": estimation,
        "service_cost": kpis["damage"] + estimation,
    }


POINT_COLUMNS: tuple[str, ...] = (
    "kind",
    "policy",
    "carbon_weight",
    "budget_units",
    "num_params",
    "flop_per_decision",
    "runs",
    "runs_ok",
    *KPI_COLUMNS,
    "pareto",
)


def points_csv(points: Sequence[dict[str, Any]]) -> str:
    """Points as CSV, one column each of `POINT_COLUMNS`, floats written exactly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(POINT_COLUMNS)
    for point in points:
        writer.writerow([_cell(point[c]) for c in POINT_COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def tolerance_text(tolerance: dict[str, float]) -> str:
    """How the front breaks ties, in one line, for the command's output and the plot.

    >>> print(tolerance_text({"service_cost": 0.0123, "compute_kgco2": 2.5e-07}))
    ties within 1e-06 of each objective's largest value: service_cost 0.0123, compute_kgco2 2.5e-07
    """
    each = ", ".join(f"{key} {value:.3g}" for key, value in tolerance.items())
    return f"ties within {PARETO_RTOL:g} of each objective's largest value: {each}"


def write_pareto(out_dir: Path, result: ParetoResult, title: str) -> tuple[Path, Path, Path, Path]:
    """Write ``points.csv``, ``front.csv``, ``front.png`` and ``pareto.json`` (objectives
    and the tolerance of the front) to ``out_dir``, atomically."""
    import json

    from simcity.records.files import write_atomic, write_atomic_bytes

    if out_dir.exists() and not out_dir.is_dir():
        raise SimcityError("exists and is not a folder", file=out_dir, field="--out")
    names = ("points.csv", "front.csv", "front.png", "pareto.json")
    paths = (out_dir / names[0], out_dir / names[1], out_dir / names[2], out_dir / names[3])
    write_atomic(paths[0], points_csv(result.points))
    write_atomic(paths[1], points_csv(result.front))
    write_atomic_bytes(paths[2], front_png(result.points, title))
    doc = {
        "objectives": list(OBJECTIVES),
        "minimised": True,
        "relative_tolerance": PARETO_RTOL,
        "tolerance": result.tolerance,
        "rule": "a point dominates another when no worse on every objective and better on "
        "one, each by more than that objective's tolerance",
        "num_points": len(result.points),
        "num_front": len(result.front),
    }
    write_atomic(paths[3], json.dumps(doc, indent=2) + "\n")
    return paths
