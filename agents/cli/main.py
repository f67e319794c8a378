"""The `simcity` command line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agents.cli import generalist as generalist_cli
from agents.cli import green as green_cli
from agents.cli import pareto as pareto_cli
from agents.cli import sweep as sweep_cli
from agents.cli import viz as viz_cli
from agents.cli.common import (
    DEFAULT_POLICY,
    DEFAULT_SCENARIO,
    QuietOption,
    ScenarioArgument,
    SplitChoice,
    SplitOption,
    check_out_dir,
    policy_help,
    print_error,
    progress_bar,
    require_torch,
    user_errors,
)
from agents.cli.tables import (
    console,
    eval_tables,
    finetune_table,
    print_compute_use,
    print_kpis,
    print_monitoring,
    scenarios_table,
)
from simcity.errors import SimcityError

if TYPE_CHECKING:
    from agents.policies.protocol import Policy

app = typer.Typer(
    help="simcity: smart-city monitoring allocation that bills the carbon of its own compute.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("scenarios")
@user_errors
def scenarios_command() -> None:
    """List the bundled scenarios."""
    from simcity.config.scenario import bundled_scenarios, load_scenario

    rows = []
    for name, path in bundled_scenarios().items():
        scenario = load_scenario(path)
        steps = f"{scenario.time.num_steps} x {scenario.time.dt_min:g} min"
        rows.append((name, scenario.title, scenario.city.source, steps))
    table = scenarios_table(rows)
    console.print(table)


@app.command("validate")
@user_errors
def validate_command(
    file: Annotated[Path, typer.Argument(help="Scenario TOML file (or a bundled name).")],
) -> None:
    """Check a scenario as `run` would: schema, every file it names (network, carbon
    trace, devices), its city and its world, without simulating the day."""
    from rich.markup import escape

    from agents.cli.validate import scenario_bases, validate_scenario

    scenario, city = validate_scenario(file)
    for base in scenario_bases(file):  # the files it inherits from, nearest first
        console.print(f"base {escape(str(base))}", emoji=False, highlight=False)
    console.print(
        f"[green]ok[/] {escape(scenario.name)}: {city.num_nodes} nodes, {city.num_links} links, "
        f"{city.num_zones} zones, {scenario.time.num_steps} steps of {scenario.time.dt_min:g} min",
        emoji=False,
        highlight=False,
    )


@app.command("run")
@user_errors
def run_command(
    scenario_name: ScenarioArgument = DEFAULT_SCENARIO,
    policy_name: Annotated[
        str,
        typer.Option("--policy", help=policy_help()),
    ] = DEFAULT_POLICY,
    episodes: Annotated[int, typer.Option("--episodes", min=1, help="Episodes (days).")] = 1,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the first episode.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for steps.csv, episodes.json, summary.json, emissions.csv (the "
            "simulated compute in CodeCarbon's columns), for maps and reports the last "
            "episode's city.json, day.npz and incidents.csv, and run.json (the manifest). "
            "An earlier run there is replaced whole.",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Simulate a scenario's day under a monitoring policy and print KPIs.

    Episode k uses seed SEED + k. Prints the last episode's hourly city KPIs and, over
    all episodes, the mean and 95% interval of damage, detection, estimation error,
    compute energy and carbon, money and reward, compute's share of the cost and the
    monitoring units left unused by hour.
    """
    from agents.training.evaluate import Episode, aggregate, run_episode
    from simcity.config.scenario import load_scenario
    from simcity.env import CityEnv
    from simcity.records.daylog import DayRecorder
    from simcity.records.emissions import emissions_csv, emissions_rows
    from simcity.records.results import clock, hourly_kpis, write_run
    from simcity.records.runfolder import check_replaceable_run, holds_run

    if out is not None:
        check_out_dir(out)
        check_replaceable_run(out)
    scenario = load_scenario(scenario_name)
    started = time.perf_counter()
    env = CityEnv(scenario)
    policy = _make_policy(policy_name, env, seed)
    results: list[Episode] = []
    recorder = DayRecorder() if out is not None else None
    num_steps = scenario.time.num_steps
    with progress_bar(quiet, "clock") as progress:
        task = progress.add_task(
            f"{scenario.name} / {policy_name}", total=episodes * num_steps, clock=""
        )

        def tick(info: dict[str, Any]) -> None:
            if recorder is not None:
                assert env.world is not None
                recorder.record(env.world)
            progress.update(task, advance=1, clock=clock(info["hour_local"]))

        for k in range(episodes):
            results.append(run_episode(env, policy, seed + k, on_step=tick))
    wall_s = time.perf_counter() - started
    assert env.world is not None
    hourly = hourly_kpis(env.world.records, env.world.dt_min)
    summaries = [r.summary for r in results]
    stats = aggregate(summaries)
    summary = {
        "scenario": scenario.name,
        "title": scenario.title,
        "policy": policy_name,
        "episodes": episodes,
        "seeds": [r.seed for r in results],
        "date": scenario.time.date.isoformat(),
        "timezone": scenario.time.timezone,
        "num_nodes": env.city.num_nodes,
        "num_links": env.city.num_links,
        "num_zones": env.city.num_zones,
        "wall_s": wall_s,
        "kpis": stats,
        "hourly_last_episode": hourly,
    }
    day = {k.removeprefix("city_"): v["mean"] for k, v in stats.items() if k.startswith("city_")}
    title = f"{scenario.title or scenario.name} (seed {results[-1].seed})"
    print_kpis(title, hourly, {**summary, **day})
    print_monitoring(policy_name, stats, episodes)
    print_compute_use([info for r in results for info in r.infos], env.budget_units, episodes)
    if out is not None:
        rows = [
            {"episode": k, "seed": r.seed, **info}
            for k, r in enumerate(results)
            for info in r.infos
        ]
        episodes_doc = [{"episode": k, "seed": r.seed, **r.summary} for k, r in enumerate(results)]
        runs = [(r.seed, r.infos) for r in results]
        carbon = emissions_rows(scenario, runs, policy=policy_name, city=env.city)
        assert recorder is not None
        extra = {"emissions.csv": emissions_csv(carbon).encode("utf-8")}
        last_day = recorder.day_log(results[-1].seed)
        replacing = holds_run(out)
        write_run(out, rows, summary, episodes_doc, day=last_day, extra=extra)
        console.print(f"wrote the run's steps, episodes, summary, emissions and last day to {out}")
        if replacing:
            console.print(f"replaced the earlier run in {out} (all its files, maps included)")


@app.command("train")
@user_errors
def train_command(
    scenario_name: ScenarioArgument = DEFAULT_SCENARIO,
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps",
            min=1,
            help="Env steps in all, over all envs, rounded up to whole rollouts [20,480; "
            "with --resume: the checkpoint's plan].",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for checkpoint.pt and progress.csv.")
    ] = Path("runs/train"),
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            metavar="",
            help="Continue from OUT/checkpoint.pt (or, in the teacher stage, teacher.pt).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the run.")] = 0,
    teacher_days: Annotated[
        int,
        typer.Option(
            "--teacher-days", min=0, help="Days learnt from the privileged teacher first (0: none)."
        ),
    ] = 24,
    carbon_weights: Annotated[
        str,
        typer.Option(
            "--carbon-weights",
            help="Comma-separated carbon weights; each episode draws one (seeded), so one "
            "policy learns the service-carbon trade-off the observation tells it. Default: "
            "the scenario's weight.",
        ),
    ] = "",
    quiet: QuietOption = False,
) -> None:
    """Train the graph-attention policy with PPO on a scenario.

    Says first what the run will do (teacher days, warm-up and PPO updates, the steps
    rounded up to whole rollouts) and warns when it is too short to change the policy.
    Writes OUT/checkpoint.pt (atomically, after the first update, every few updates and at
    the end) and OUT/progress.csv. --resume continues the checkpoint's planned run and ends
    identical to an uninterrupted one; a --steps other than the plan is a new plan.
    """
    require_torch("simcity train")
    from agents.green.pareto import parse_numbers
    from agents.training.config import TeacherConfig
    from agents.training.resume import planned_steps
    from agents.training.train import TrainConfig, UpdateStats, train
    from agents.training.train_io import describe_plan, describe_resume
    from simcity.config.scenario import load_scenario

    check_out_dir(out, ("checkpoint.pt", "progress.csv"))
    saved = [out / name for name in ("checkpoint.pt", "teacher.pt") if (out / name).exists()]
    if not resume and saved:
        raise SimcityError(
            "already holds a checkpoint",
            file=out,
            field="--out",
            expected="--resume or a new folder",
        )
    if resume and not saved:  # stopped before its first checkpoint: nothing to continue
        raise SimcityError(
            "holds no checkpoint.pt or teacher.pt",
            file=out,
            field="--resume",
            expected="a folder a run has checkpointed; without --resume, a new run",
        )
    scenario = load_scenario(scenario_name)
    teacher = TeacherConfig(days=teacher_days)
    weights = parse_numbers(carbon_weights, "--carbon-weights") if carbon_weights else ()
    planned = planned_steps(saved[0]) if resume and saved else None
    asked = steps if steps is not None else planned if planned is not None else 20_480
    config = TrainConfig(total_steps=asked, seed=seed, teacher=teacher, carbon_weights=weights)
    plan, too_short = describe_plan(config, asked)
    console.print(plan, highlight=False, soft_wrap=True)
    if planned is not None:
        said, same = describe_resume(config, planned, saved[0].name)
        if same:
            console.print(f"resume: {said}", highlight=False, soft_wrap=True)
        else:
            print_error("note:", said, style="yellow")
    if too_short is not None:
        print_error("warning:", too_short, style="yellow")
    with progress_bar(quiet, "kpis") as progress:
        task = progress.add_task(f"{scenario.name} / start", total=None, kpis="")

        def moved(name: str, done: int, total: int) -> None:
            progress.update(
                task, description=f"{scenario.name} / {name}", completed=done, total=total
            )

        def tick(stats: UpdateStats) -> None:
            reward = f"episode reward {stats.mean_episode_reward:.4g}  " if stats.episodes else ""
            kpis = f"{reward}kl {stats.approx_kl:.3g}  {stats.steps_per_s:,.0f} steps/s"
            progress.update(task, completed=stats.update, kpis=kpis)

        result = train(scenario, config, out, resume=resume, progress=tick, stage=moved)
    last = result.last
    summary = f"{result.update} updates, {result.step:,} steps"
    if last is not None and last.episodes:
        summary += f", last mean episode reward {last.mean_episode_reward:.4g}"
    console.print(
        f"[green]ok[/] {summary}; wrote {result.checkpoint_path} and {result.progress_path}"
    )


@app.command("finetune")
@user_errors
def finetune_command(
    checkpoint: Annotated[
        str,
        typer.Argument(
            metavar="[CHECKPOINT]",
            help="A checkpoint trained on another city; left out (SCENARIO alone): the "
            "shipped generalist.",
        ),
    ],
    scenario_name: Annotated[
        str | None,
        typer.Argument(
            metavar="SCENARIO", help="Bundled scenario name or TOML file.", show_default=False
        ),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Env steps for each run.")] = 20_000,
    freeze_encoder: Annotated[
        bool, typer.Option("--freeze-encoder", metavar="", help="Train only the heads.")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Folder for both runs.")] = Path(
        "runs/finetune"
    ),
    episodes: Annotated[int, typer.Option("--episodes", min=2, help="Held-out days.")] = 10,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of both runs.")] = 0,
    quiet: QuietOption = False,
) -> None:
    """Adapt a trained policy to another city; compare with zero-shot and from scratch.

    Trains the checkpoint's weights and a fresh policy of the same shape for --steps env
    steps each on SCENARIO, plays the checkpoint zero-shot, both runs, uniform and risk on
    the same held-out days, and writes OUT/finetune.json and OUT/curves.png. With SCENARIO
    alone it starts from the shipped generalist (`simcity train-generalist`).
    """
    require_torch("simcity finetune")
    from agents.data import pretrained_checkpoint
    from agents.green.finetune import finetune
    from agents.training.train import TrainConfig

    if scenario_name is None:  # one argument: the scenario, from the shipped generalist
        checkpoint, scenario_name = str(pretrained_checkpoint()), checkpoint

    check_out_dir(out, ("finetune.json", "curves.png"))
    if (out / "finetuned" / "checkpoint.pt").exists():
        raise SimcityError("already holds a fine-tuning run", file=out, field="--out")
    num_updates = 2 * TrainConfig(total_steps=steps).num_updates
    with progress_bar(quiet, "kpis") as progress:
        task = progress.add_task("finetune + scratch", total=num_updates, kpis="")
        doc = finetune(
            checkpoint,
            scenario_name,
            out,
            steps=steps,
            freeze_encoder=freeze_encoder,
            seed=seed,
            episodes=episodes,
            progress=lambda name, stats: progress.update(task, advance=1, kpis=name),
        )
    console.print(finetune_table(doc, episodes))
    console.print(f"wrote {out / 'finetune.json'} and {out / 'curves.png'}")


@app.command("eval")
@user_errors
def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint.pt written by simcity train.")],
    scenario_name: ScenarioArgument = DEFAULT_SCENARIO,
    episodes: Annotated[int, typer.Option("--episodes", min=2, help="Held-out days.")] = 10,
    split: SplitOption = SplitChoice.test,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for eval.json and eval.csv [default: beside CHECKPOINT]."
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Compare a trained policy with every baseline and the clairvoyant reference.

    Every policy plays the same held-out days, the first EPISODES of --split (never used in
    training); the table gives the mean and 95% interval of each KPI. The trained policy's
    FLOPs are billed.
    """
    require_torch("simcity eval")
    from agents.policies.baselines import BASELINES, make_baseline
    from agents.policies.compressed import load_policy
    from agents.training.evaluate import KPIS, compare_policies
    from agents.training.seeds import split_seeds
    from simcity.config.scenario import load_scenario
    from simcity.env import CityEnv
    from simcity.records.files import write_atomic

    out_dir = out if out is not None else checkpoint.parent
    check_out_dir(out_dir, ("eval.csv", "eval.json"))
    env = CityEnv(load_scenario(scenario_name))
    policies: list[Policy] = [load_policy(checkpoint, env, name="trained")]
    policies += [make_baseline(name, env, seed=0) for name in BASELINES]
    seeds = split_seeds(split.value, episodes)
    with progress_bar(quiet) as progress:
        task = progress.add_task("eval", total=len(policies) * episodes)
        table = compare_policies(env, policies, seeds, lambda: progress.advance(task))
    title = f"{env.scenario.name}: {episodes} {split.value} days, mean ± 95%"
    for view in eval_tables(title, table):
        console.print(view)
    header = ["policy"] + [f"{k}_{part}" for k, _ in KPIS for part in ("mean", "ci95")]
    rows = [",".join(header)]
    for name, stats in table.items():
        values = [repr(stats[k][part]) for k, _ in KPIS for part in ("mean", "ci95")]
        rows.append(",".join([name, *values]))
    document: dict[str, Any] = {"checkpoint": str(checkpoint), "scenario": env.scenario.name}
    document |= {"split": split.value, "seeds": seeds}
    write_atomic(out_dir / "eval.csv", "\n".join(rows) + "\n")
    write_atomic(out_dir / "eval.json", json.dumps({**document, "table": table}, indent=2) + "\n")
    console.print(f"wrote eval.csv and eval.json to {out_dir}")


def _make_policy(name: str, env: Any, seed: int) -> Policy:
    """A baseline by name, or a trained policy from a checkpoint file."""
    from agents.policies.baselines import make_baseline

    path = Path(name)
    if name == "pretrained" and not path.exists():  # the shipped generalist
        require_torch("--policy pretrained")
        from agents.data import pretrained_checkpoint
        from agents.policies.compressed import load_policy

        return load_policy(pretrained_checkpoint(), env, name="pretrained")
    if path.suffix == ".pt" or path.is_file():
        require_torch(f"--policy {name} (a trained checkpoint)")
        from agents.policies.compressed import load_policy

        return load_policy(path, env, name="trained")
    return make_baseline(name, env, seed=seed)


sweep_cli.register(app)
generalist_cli.register(app)
pareto_cli.register(app)
green_cli.register(app)
viz_cli.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
