"""The `simcity pareto` command, registered on the main app."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from agents.cli.common import QuietOption
from agents.cli.sweep import BackendChoice
from simcity.errors import SimcityError

ScenarioArgument = Annotated[
    str, typer.Argument(metavar="SCENARIO", help="Bundled scenario name or TOML file.")
]


def parse_set(texts: list[str]) -> list[tuple[str, Any]]:
    """``KEY=VALUE`` options as (dotted key, value); a value is JSON when it parses, else text.

    >>> parse_set(["time.num_steps=8", "carbon.region=CA"])
    [('time.num_steps', 8), ('carbon.region', 'CA')]
    """
    changes = []
    for text in texts:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise SimcityError(f"is {text!r}", field="--set", expected="KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        changes.append((key.strip(), value))
    return changes


def register(app: typer.Typer) -> None:
    """Add the ``pareto`` command to ``app``."""
    from agents.cli.common import check_out_dir, progress_bar, require_torch, user_errors

    @app.command("pareto")
    @user_errors
    def pareto_command(
        scenario_name: ScenarioArgument,
        checkpoints: Annotated[
            list[Path] | None,
            typer.Option(
                "--checkpoint",
                help="A policy file (simcity train, or simcity compress): one model size. "
                "Repeat for several.",
            ),
        ] = None,
        budgets: Annotated[
            str, typer.Option("--budgets", help="Monitoring budgets (units), comma-separated.")
        ] = "10,20,40",
        carbon_weights: Annotated[
            str,
            typer.Option("--carbon-weights", help="Carbon price weights, comma-separated."),
        ] = "0,1,10",
        seeds: Annotated[int, typer.Option("--seeds", min=1, help="Days per point.")] = 3,
        clairvoyant: Annotated[
            bool,
            typer.Option(
                "--clairvoyant",
                metavar="",
                help="Add the clairvoyant reference's points (it sees the true incidents: "
                "a reference, not a deployable policy or a bound).",
            ),
        ] = False,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="A scenario override in every run, KEY=VALUE."),
        ] = None,
        backend: Annotated[
            BackendChoice, typer.Option("--backend", help="Local processes, or Ray.")
        ] = BackendChoice.process,
        workers: Annotated[
            int | None,
            typer.Option("--workers", min=1, help="Workers (default: the CPUs here)."),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", help="Folder for points.csv, front.csv, front.png and pareto.json."
            ),
        ] = None,
        quiet: QuietOption = False,
    ) -> None:
        """Pareto front of service cost, compute kgCO2 and money.

        Plays every baseline (uniform, risk, traffic, population; --clairvoyant too) and each
        --checkpoint at every carbon weight and budget, on seeds 0..SEEDS-1. Writes
        OUT/points.csv (every point, mean over seeds, with a pareto column), OUT/front.csv
        (the non-dominated points), OUT/front.png and OUT/pareto.json (the objectives and the
        tolerance below which two points tie: 1e-6 of each objective's largest value). It
        evaluates the checkpoints given; training a point is `simcity train` on the scenario
        with the same overrides.
        """
        if checkpoints:
            require_torch("simcity pareto --checkpoint")
        from agents.cli.tables import console, number
        from agents.green.pareto import parse_numbers, run_pareto, tolerance_text, write_pareto
        from agents.sweeps.sweep import RunResult

        budget_values = parse_numbers(budgets, "--budgets")
        weight_values = parse_numbers(carbon_weights, "--carbon-weights")
        overrides = parse_set(set_ or [])
        stem = Path(scenario_name).stem if scenario_name.endswith(".toml") else scenario_name
        out_dir = out if out is not None else Path("runs") / "pareto" / stem
        check_out_dir(out_dir, ("points.csv", "front.csv", "front.png", "pareto.json"))
        started = time.perf_counter()
        with progress_bar(quiet, "last") as progress:
            task = progress.add_task(f"pareto {stem}", total=None, last="")

            def tick(result: RunResult) -> None:
                last = f"{result.spec.policy} run {result.spec.run_id} {result.status}"
                progress.update(task, advance=1, last=last)

            result = run_pareto(
                scenario_name,
                [str(p) for p in checkpoints or []],
                budget_values,
                weight_values,
                seeds,
                clairvoyant=clairvoyant,
                overrides=overrides,
                backend=backend.value,
                workers=workers,
                on_result=tick,
                on_specs=lambda total: progress.update(task, total=total),
            )
        wall_s = time.perf_counter() - started
        write_pareto(out_dir, result, f"{stem}: {seeds} seeds per point")
        front = result.front
        console.print(
            f"{len(result.points)} points ({len(result.runs)} runs) in {wall_s:.1f} s; "
            f"{len(front)} on the front of service cost, kgCO2 and money "
            f"({tolerance_text(result.tolerance)}):",
            highlight=False,
        )
        for point in front:
            console.print(
                f"  {point['policy']:<12} weight {point['carbon_weight']:g} "
                f"budget {point['budget_units']:g}: service ${number(point['service_cost'])}, "
                f"{number(point['compute_kgco2'])} kgCO2, ${number(point['money'])}",
                highlight=False,
            )
        console.print(f"wrote points.csv, front.csv, front.png and pareto.json to {out_dir}")
        failed = [r for r in result.runs if r.status != "ok"]
        if failed:
            from agents.cli.sweep import _print_failures

            _print_failures(failed)
            raise typer.Exit(1)
