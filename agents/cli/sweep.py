"""The `simcity sweep` command, registered on the main app."""

from __future__ import annotations

import json
import math
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from simcity.errors import SimcityError

if TYPE_CHECKING:
    from agents.sweeps.sweep import RunResult


class BackendChoice(StrEnum):
    process = "process"
    ray = "ray"


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` command to ``app``."""
    from agents.cli.common import check_out_dir, progress_bar, require_torch, user_errors

    @app.command("sweep")
    @user_errors
    def sweep_command(
        sweep_file: Annotated[
            str, typer.Argument(metavar="SWEEP_FILE", help="Sweep TOML file (or a bundled one).")
        ],
        backend: Annotated[
            BackendChoice,
            typer.Option("--backend", help="Local processes (no server), or Ray."),
        ] = BackendChoice.process,
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                min=1,
                help="Worker processes, or the CPUs of a local Ray (default: the CPUs here); "
                "a Ray cluster (--address) uses all of its CPUs.",
            ),
        ] = None,
        address: Annotated[
            str | None,
            typer.Option("--address", help="An existing Ray cluster (--backend ray)."),
        ] = None,
        retries: Annotated[
            int,
            typer.Option(
                "--retries", min=0, help="Retries of a run whose worker dies or times out."
            ),
        ] = 2,
        timeout_s: Annotated[
            float | None,
            typer.Option(
                "--timeout-s",
                help="Seconds an attempt of a run may take: past it, its worker is killed and "
                "the run retried, then recorded as timeout [default: the sweep file's "
                "timeout_s, else none].",
            ),
        ] = None,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for results.csv, results.json and sweep.json, written "
                "atomically (default: runs/sweeps/NAME).",
            ),
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    ) -> None:
        """Run a grid of scenario x policy x seed x scenario overrides.

        One row per run (mean KPIs over its episodes) goes to OUT/results.csv and
        OUT/results.json, sorted by run id and the same on every backend and worker
        count. A run whose worker dies, or that runs past --timeout-s, is retried; exits 1
        when a run still failed.
        """
        from agents.policies.baselines import BASELINES
        from agents.sweeps.results import write_results
        from agents.sweeps.run import default_workers, run_sweep
        from agents.sweeps.sweep import MAX_TIMEOUT_S, expand, load_sweep
        from simcity.records.files import write_atomic

        if address is not None and backend is not BackendChoice.ray:
            raise SimcityError("needs --backend ray", field="--address")
        sweep = load_sweep(sweep_file)
        limit_s = timeout_s if timeout_s is not None else sweep.timeout_s
        if limit_s is not None and not (math.isfinite(limit_s) and 0 < limit_s <= MAX_TIMEOUT_S):
            raise SimcityError(
                f"is {limit_s!r}", field="--timeout-s", expected=f"> 0 and <= {MAX_TIMEOUT_S:g}"
            )
        out_dir = out if out is not None else Path("runs") / "sweeps" / sweep.name
        check_out_dir(out_dir, ("results.csv", "results.json", "sweep.json"))
        for entry in sweep.policies:
            if entry not in BASELINES and (sweep.base_dir / entry).is_file():
                require_torch(f"simcity sweep policy {entry!r} (a trained checkpoint)")
        specs = expand(sweep)
        started = time.perf_counter()
        with progress_bar(quiet, "last") as progress:
            task = progress.add_task(f"sweep {sweep.name}", total=len(specs), last="")

            def tick(result: RunResult) -> None:
                spec = result.spec
                retried = f", {result.attempts} attempts" if result.attempts > 1 else ""
                last = f"run {spec.run_id} {result.status}{retried}"
                progress.update(task, advance=1, last=last)

            results = run_sweep(
                specs,
                backend=backend.value,
                workers=workers,
                address=address,
                retries=retries,
                on_result=tick,
                timeout_s=limit_s,
            )
        wall_s = time.perf_counter() - started
        write_results(out_dir, results)
        kinds = ("ok", "error", "failed", "timeout")
        statuses = {s: sum(r.status == s for r in results) for s in kinds}
        meta = {
            "sweep": str(sweep.file),
            "name": sweep.name,
            "backend": backend.value,
            "workers": workers if workers is not None else default_workers(),
            "address": address,
            "retries": retries,
            "timeout_s": limit_s,
            "runs": len(results),
            **statuses,
            "retried": sum(r.attempts > 1 for r in results),
            "wall_s": wall_s,
        }
        write_atomic(out_dir / "sweep.json", json.dumps(meta, indent=2) + "\n")
        _print_summary(results, sweep.name, wall_s, backend.value)
        _print_failures(results)
        if statuses["error"] or statuses["failed"] or statuses["timeout"]:
            raise typer.Exit(1)


SUMMARY_KPIS: tuple[tuple[str, str], ...] = (
    ("damage", "damage $"),
    ("detection_rate", "detected"),
    ("mean_detection_delay_min", "delay min"),
    ("compute_kgco2", "kgCO2"),
    ("money", "cost $"),
)


def _print_summary(results: list[RunResult], name: str, wall_s: float, backend: str) -> None:
    """Mean KPIs over seeds per cell of the grid; only what varies gets a column."""
    from rich.table import Table

    from agents.cli.tables import console, number

    def cell_of(result: RunResult) -> tuple[str, ...]:
        spec = result.spec
        return (spec.scenario, spec.policy, *(_value(v) for _, v in spec.overrides))

    keys = ["scenario", "policy", *(k for k, _ in results[0].spec.overrides)] if results else []
    cells: dict[tuple[str, ...], list[dict[str, float]]] = {}
    for result in results:
        kpis = cells.setdefault(cell_of(result), [])
        if result.status == "ok":
            kpis.append(result.kpis)
    varying = [i for i in range(len(keys)) if len({c[i] for c in cells}) > 1]
    retried = sum(r.attempts > 1 for r in results)
    table = Table(
        title=f"sweep {name}: {len(results)} runs on {backend} in {wall_s:.1f} s, "
        f"{retried} retried; means over seeds",
        title_justify="left",
    )
    for i in varying:
        header = keys[i].rsplit(".", 1)[-1]
        table.add_column(header, min_width=len(header))
    table.add_column("ok", justify="right")
    for _, label in SUMMARY_KPIS:
        table.add_column(label, justify="right")
    for cell, kpis in cells.items():
        means = [
            number(sum(k[key] for k in kpis) / len(kpis)) if kpis else "–"
            for key, _ in SUMMARY_KPIS
        ]
        table.add_row(*(cell[i] for i in varying), str(len(kpis)), *means)
    console.print(table)


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _print_failures(results: list[RunResult]) -> None:
    from agents.cli.common import print_error

    for result in results:
        if result.status != "ok":
            last = result.failures[-1] if result.failures else ""
            print_error(f"run {result.spec.run_id} {result.status}:", last)
