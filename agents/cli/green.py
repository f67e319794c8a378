"""The `simcity compress`, `simcity explain` and `simcity calibrate` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agents.cli.common import QuietOption
from agents.cli.green_tables import (
    compression_table,
    cpu_calibration_table,
    energy_table,
    gpu_calibration_table,
    node_tables,
)
from simcity.errors import SimcityError
from simcity.safe_io import check_output_file

CheckpointArgument = Annotated[
    Path,
    typer.Argument(
        metavar="CHECKPOINT",
        help="A checkpoint.pt from `simcity train` (or a policy.pt from `simcity compress`).",
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", min=0, help="Seed of data and models.")]


def _out_dir(out: Path | None, default: Path, files: tuple[str, ...]) -> Path:
    from agents.cli.common import check_out_dir

    return check_out_dir(out if out is not None else default, files)


def register(app: typer.Typer) -> None:
    """Add the ``compress``, ``explain`` and ``calibrate`` commands to ``app``."""
    from agents.cli.common import DEFAULT_SCENARIO, progress_bar, require_torch, user_errors
    from agents.cli.tables import console

    @app.command("compress")
    @user_errors
    def compress_command(
        checkpoint: CheckpointArgument,
        scenario_name: Annotated[
            str, typer.Argument(metavar="[SCENARIO]", help="Bundled scenario name or TOML file.")
        ] = DEFAULT_SCENARIO,
        method: Annotated[
            str, typer.Option("--method", help="int8 | prune | distill.", show_default=False)
        ] = "",
        out: Annotated[
            Path | None,
            typer.Option(
                "--out", help="Folder for policy.pt, compress.json [CHECKPOINT folder/METHOD]."
            ),
        ] = None,
        episodes: Annotated[
            int, typer.Option("--episodes", min=0, help="Held-out days for the KPIs (0: none).")
        ] = 5,
        heads: Annotated[
            int | None,
            typer.Option("--heads", min=1, help="prune: heads kept; distill: the student's heads."),
        ] = None,
        mlp_hidden: Annotated[
            int | None, typer.Option("--mlp-hidden", min=1, help="prune: MLP units kept [half].")
        ] = None,
        d_model: Annotated[
            int | None, typer.Option("--d-model", min=1, help="distill: student width [half].")
        ] = None,
        layers: Annotated[
            int | None, typer.Option("--layers", min=1, help="distill: student layers [half].")
        ] = None,
        finetune: Annotated[
            bool,
            typer.Option("--finetune/--no-finetune", metavar="", help="prune: distil afterwards."),
        ] = True,
        rollouts: Annotated[
            int, typer.Option("--rollouts", min=1, help="distill: teacher days of data.")
        ] = 16,
        epochs: Annotated[int, typer.Option("--epochs", min=1, help="distill: epochs.")] = 40,
        cpu_device: Annotated[
            str,
            typer.Option(
                "--cpu-device",
                help="CPU profile (shipped, or in the scenario's devices_file, e.g. from "
                "`simcity calibrate --device cpu`) that int8 runs on and measured latencies "
                "are billed on.",
            ),
        ] = "epyc_9654_2s",
        seed: SeedOption = 0,
        quiet: QuietOption = False,
    ) -> None:
        """Make a cheaper policy (int8, pruned or distilled) and compare it with the original.

        Reports parameters, FLOPs and int8 ops per decision, the measured CPU latency, energy
        and carbon per decision as time x power where each policy runs (int8: on the CPU at
        its measured latency; float: on the scenario's policy device, time modelled) and on
        the CPU at the measured latency, and the service KPIs of held-out days in the env.
        """
        if not method:
            raise SimcityError(
                "not given", field="--method", expected="one of int8 | prune | distill"
            )
        require_torch("simcity compress")
        from agents.green.compress import CompressOptions, compress_checkpoint
        from agents.green.distill import DistillConfig
        from simcity.config.scenario import load_scenario
        from simcity.env import CityEnv

        options = CompressOptions(
            method=method,
            episodes=episodes,
            heads=heads,
            mlp_hidden=mlp_hidden,
            d_model=d_model,
            num_layers=layers,
            finetune=finetune,
            distill=DistillConfig(episodes=rollouts, epochs=epochs, seed=seed),
            cpu_device=cpu_device,
        )
        out_dir = _out_dir(out, checkpoint.parent / method, ("policy.pt", "compress.json"))
        env = CityEnv(load_scenario(scenario_name))
        # compress.py reports its stages (teacher days, fit epochs, evaluate NAME) with counts.
        stage = f"compress / {method}"
        with progress_bar(quiet) as progress:
            task = progress.add_task(stage, total=None)

            def report_stage(name: str, done: int, total: int) -> None:
                progress.update(task, description=f"{stage} / {name}", completed=done, total=total)

            report = compress_checkpoint(checkpoint, env, options, out_dir, report_stage)
            progress.update(task, description=f"{stage} / done", total=1, completed=1)
        console.print(compression_table(report))
        console.print(energy_table(report))
        console.print(f"wrote {report['policy_file']} and {out_dir / 'compress.json'}")

    @app.command("explain")
    @user_errors
    def explain_command(
        checkpoint: CheckpointArgument,
        scenario_name: Annotated[
            str, typer.Argument(metavar="SCENARIO", help="Bundled scenario name or TOML file.")
        ],
        at: Annotated[str, typer.Option("--at", help="Local time of the decision, HH:MM.")],
        seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the day.")] = 0,
        top: Annotated[int, typer.Option("--top", min=1, help="Nodes to explain.")] = 5,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="Folder for explain.json, attention.csv, features.csv and explain.html.",
            ),
        ] = None,
        no_map: Annotated[
            bool, typer.Option("--no-map", metavar="", help="Write no explain.html to --out.")
        ] = False,
    ) -> None:
        """Explain one decision: whom the top nodes attended to, which features drove it.

        Plays the policy to --at, then gives, for the nodes given the most units, their
        attention over their neighbours (per layer and head, and the mean), integrated
        gradients (IG) of their allocation share with respect to every input feature, and
        the change in that share when a feature is zeroed everywhere (ablation). With
        --out, also a map of the decision (explain.html, offline).
        """
        require_torch("simcity explain")
        from agents.green.explain import explain_at, write_explanation
        from agents.policies.compressed import load_policy
        from agents.viz.explain_map import write_explain_map
        from simcity.config.scenario import load_scenario
        from simcity.env import CityEnv

        files = ("explain.json", "attention.csv", "features.csv", "explain.html")
        out_dir = _out_dir(out, out, files) if out is not None else None
        env = CityEnv(load_scenario(scenario_name))
        explanation = explain_at(load_policy(checkpoint, env), env, at, seed, top)
        for node in explanation.nodes:
            for table in node_tables(node, explanation.time_local):
                console.print(table)
        if out_dir is not None:
            paths = write_explanation(out_dir, explanation)
            if not no_map:
                title = env.scenario.title or env.scenario.name
                paths.append(write_explain_map(out_dir, explanation, env.city, title))
            console.print("wrote " + ", ".join(p.name for p in paths) + f" to {out_dir}")

    @app.command("calibrate")
    @user_errors
    def calibrate_command(
        device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cuda",
        out: Annotated[
            Path, typer.Option("--out", help="Devices TOML to add the profile to.")
        ] = Path("devices.toml"),
        scenario_name: Annotated[
            str, typer.Option("--scenario", help="City the policy decides on.")
        ] = DEFAULT_SCENARIO,
        checkpoint: Annotated[
            Path | None, typer.Option("--checkpoint", help="Policy to time [a fresh default].")
        ] = None,
        base: Annotated[
            str | None,
            typer.Option("--base", help="cuda: shipped profile to fit [from the GPU name]."),
        ] = None,
        name: Annotated[
            str | None,
            typer.Option("--name", help="Profile name [BASE_measured; cpu: cpu_PROVENANCE]."),
        ] = None,
        seconds: Annotated[
            float, typer.Option("--seconds", min=0.1, help="Measured time per model.")
        ] = 2.0,
        frame_px: Annotated[
            int, typer.Option("--frame-px", min=8, help="Analytics frame side in pixels.")
        ] = 640,
        batch: Annotated[
            int | None,
            typer.Option("--batch", min=1, help="Analytics frames per call [cuda 8, cpu 1]."),
        ] = None,
    ) -> None:
        """Measure the policy's and the analytics' cost per call on a device; write a profile.

        cuda: NVML's energy counter around back-to-back calls; the GPU's shipped profile is
        fitted to the analytics run (provenance "calibrated"). Without an NVIDIA GPU it says so
        and exits 2. cpu: latencies measured (perf_counter, warm, median), energy from RAPL where
        readable (provenance "measured"), else latency x a stated CPU power ("calibrated").
        """
        require_torch("simcity calibrate")
        from agents.green.calibrate import torch_device, write_profile
        from simcity.config.scenario import load_scenario
        from simcity.env import CityEnv

        kind = torch_device(device).type
        check_output_file(out, expected="a devices TOML file to write (--out)")
        env = CityEnv(load_scenario(scenario_name))
        if kind == "cpu":
            from agents.green.calibrate_cpu import calibrate_cpu

            cpu = calibrate_cpu(
                env=env,
                checkpoint=checkpoint,
                name=name,
                frame_px=frame_px,
                batch=batch or 1,
                seconds=seconds,
            )
            write_profile(out, cpu.profile)
            console.print(cpu_calibration_table(cpu))
            profile = cpu.profile
        else:
            from agents.green.calibrate import calibrate_device

            result = calibrate_device(
                device=device,
                env=env,
                checkpoint=checkpoint,
                base=base,
                name=name,
                seconds=seconds,
                frame_px=frame_px,
                batch=batch or 8,
            )
            write_profile(out, result.profile)
            console.print(gpu_calibration_table(result))
            profile = result.profile
        console.print(
            f"wrote profile {profile.name} ({profile.provenance}: call overhead "
            f"{profile.call_overhead_s * 1e3:.4g} ms, utilisation {profile.utilisation:.3g}, "
            f"max {profile.max_power_w:.4g} W) to {out}; use it with [compute] "
            f'device = "{profile.name}" (analytics) and/or policy_device = "{profile.name}", '
            f'devices_file = "{out}"',
            markup=False,
        )
