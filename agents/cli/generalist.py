"""``simcity train-generalist``: one policy for many generated cities."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from agents.cli.common import QuietOption
from simcity.errors import SimcityError


def _commit() -> str | None:
    """The git commit of the working directory, if it is a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def register(app: typer.Typer) -> None:
    """Add the ``train-generalist`` command to ``app``."""
    from agents.cli.common import check_out_dir, progress_bar, require_torch, user_errors
    from agents.cli.tables import console

    @app.command("train-generalist")
    @user_errors
    def train_generalist_command(
        cities: Annotated[int, typer.Option("--cities", min=1, help="Cities to draw.")] = 40,
        updates: Annotated[
            int, typer.Option("--updates-per-city", min=1, help="PPO updates on each city.")
        ] = 2,
        max_nodes: Annotated[
            int, typer.Option("--max-nodes", min=50, help="Largest city drawn (nodes).")
        ] = 1000,
        large_share: Annotated[
            float,
            typer.Option(
                "--large-share", min=0.0, max=1.0, help="Share of cities of 250 nodes or more."
            ),
        ] = 0.1,
        teacher_days: Annotated[
            int,
            typer.Option("--teacher-days", min=0, help="Teacher days on each city (0: none)."),
        ] = 2,
        dagger_days: Annotated[
            int, typer.Option("--dagger-days", min=0, help="DAgger days on each city.")
        ] = 1,
        teacher_epochs: Annotated[
            int,
            typer.Option(
                "--teacher-epochs",
                min=1,
                help="Epochs of each city's teacher fit (a DAgger refit: half); few, so one "
                "city does not undo the others.",
            ),
        ] = 4,
        seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the run.")] = 0,
        out: Annotated[
            Path, typer.Option("--out", help="Folder for checkpoint.pt and generalist.json.")
        ] = Path("runs/generalist"),
        quiet: QuietOption = False,
    ) -> None:
        """Train one policy over generated cities (grid, ring-radial, random geometric;
        50 to --max-nodes nodes; budgets, hotspots, sensors, carbon and prices drawn per
        city; see agents.training.generalist). Per city: teacher DAgger days, then PPO
        updates. Writes OUT/checkpoint.pt and OUT/generalist.json (how it was made) after
        every city. The bundled generalist (--policy pretrained) was made by this command."""
        require_torch("simcity train-generalist")
        from agents.training.config import TeacherConfig, TrainConfig
        from agents.training.generalist import CityStats, train_generalist
        from simcity.config.scenario import load_scenario
        from simcity.records.files import write_atomic

        check_out_dir(out, ("checkpoint.pt", "generalist.json"))
        if (out / "checkpoint.pt").exists():
            raise SimcityError("already holds a checkpoint", file=out, field="--out")
        teacher = TeacherConfig(
            days=teacher_days,
            dagger_rounds=1 if dagger_days else 0,
            dagger_days=dagger_days,
            epochs=teacher_epochs,
        )
        config = TrainConfig(seed=seed, teacher=teacher)
        started = time.perf_counter()

        done: list[CityStats] = []

        def record(step: int, update: int) -> None:
            """OUT/generalist.json: how the checkpoint there was made, so far."""
            doc = {
                "command": "simcity " + " ".join(sys.argv[1:]),
                "commit": _commit(),
                "cities_planned": cities,
                "steps": step,
                "updates": update,
                "wall_s": round(time.perf_counter() - started, 1),
                "cities": [
                    {"scenario": c.scenario, "num_nodes": c.num_nodes, "wall_s": round(c.wall_s, 1)}
                    for c in done
                ],
            }
            write_atomic(out / "generalist.json", json.dumps(doc, indent=2) + "\n")

        def tick(stats: CityStats) -> None:
            progress.update(city, completed=stats.index + 1)
            done.append(stats)
            record(stats.step, (stats.index + 1) * updates)
            reward = stats.mean_episode_reward
            shown = f"{reward:.4g}" if not math.isnan(reward) else "-"
            console.print(
                f"city {stats.index + 1}/{cities} {stats.scenario} ({stats.num_nodes} nodes): "
                f"episode reward {shown}, teacher loss {stats.teacher_loss:.3g}, "
                f"{stats.wall_s:.0f} s, {stats.step:,} steps",
                highlight=False,
            )

        # Lines between the per-city ones: the cities done and the time, every LINE_EVERY_S.
        with progress_bar(quiet) as progress:
            city = progress.add_task("generalist / cities (teacher + ppo each)", total=cities)
            result = train_generalist(
                config,
                out,
                num_cities=cities,
                updates_per_city=updates,
                base=load_scenario("tiny"),
                max_nodes=max_nodes,
                large_share=large_share,
                progress=tick,
            )
        record(result.step, result.update)
        console.print(f"[green]ok[/] {result.step:,} steps; wrote {result.checkpoint_path}")
