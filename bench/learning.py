"""Does the learned policy win honestly, and carry to other cities? Issue 19's report.

Not a test: trains, evaluates on one seed split and writes a report. Run from the
repository root (after ``pip install -e '.[dev]'``):

    python bench/learning.py --out runs/learning [--split test] [--steps 20480]
                             [--finetune-city helsinki] [--finetune-steps 10240]
                             [--seeds downtown=30,ringtown=30,metro=10,helsinki=30,coquimbo=20]

Every stage writes into ``--out`` and a rerun skips what is there (a killed run resumes).

1. Training, two jobs at a time on the 2 cores (one process each, torch threads 1):
   - ``attention``: `agents.training.train.train` with the default `TrainConfig` on
     downtown for ``--steps`` env steps (the teacher stage included); its wall time is the
     "training the downtown policy" figure (measured with another job on the other core);
   - ``sb3_tuned`` and ``sb3_defaults``: Stable-Baselines3 PPO for the same steps on the same
     env (`agents.references.sb3`: RL-Zoo-style settings with ``VecNormalize`` and softmax
     actions, labelled "tuned"; SB3's defaults, labelled "defaults");
   - ``finetuned`` and ``scratch`` on ``--finetune-city``, a city the generalist never saw:
     PPO alone for ``--finetune-steps`` steps each, from the shipped generalist
     (``agents/data/generalist.pt``) and from a fresh network with the same seed.
2. Evaluation on ``--split`` days (`agents.training.seeds`; ``test`` for the report, read
   once; ``validation`` for any choice), with common random numbers: every classical
   baseline (the heuristics, ``search``, ``whittle``), the clairvoyant reference and the
   pretrained generalist (zero-shot) on every city, plus the jobs of stage 1 on their city.
   Each policy is billed its own compute per decision.
3. Report per city: total cost per day ($, mean and Student-t 95% interval), the share of
   the uniform-to-clairvoyant gap each policy closes, and paired 95% intervals (over the
   same days) in points of that gap: the trained policy against the best classical
   baseline, the generalist against it, fine-tuned against scratch; then issue 19's
   targets, each met or not. ``results.json`` holds it all with the command and commit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", message=".*blank value")

CLASSICAL = ("uniform", "population", "traffic", "risk", "alarm", "posterior", "search", "whittle")
REFERENCE = "clairvoyant"
GENERALIST = "generalist"
CITIES = {"downtown": 30, "ringtown": 30, "metro": 10, "helsinki": 30, "coquimbo": 20}
TARGET_GAP = 0.60  # downtown: share of the uniform-to-clairvoyant gap closed
TARGET_LEAD = 0.05  # downtown: lead over the best classical baseline, in gap points
TARGET_TRAIN_MIN = 30.0


def _commit() -> str:
    """HEAD's commit, ``-dirty`` when tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "HEAD") + "-dirty" * bool(dirty)


# -- stage 1: training ----------------------------------------------------------------------


def _threads() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)


def train_job(job: tuple[str, str, int, str]) -> dict[str, Any]:
    """Run one training job ``(kind, scenario, steps, out_dir)``; return its timing."""
    _threads()
    kind, scenario, steps, out = job
    out_dir = Path(out)
    started = time.perf_counter()
    if kind == "attention":
        from agents.training.train import TrainConfig, train

        result = train(scenario, TrainConfig(total_steps=steps), out_dir)
        done = result.step
    elif kind in ("sb3_tuned", "sb3_defaults"):
        from agents.references.sb3 import train_sb3

        done = train_sb3(scenario, steps, out_dir, tuned=kind == "sb3_tuned")["steps"]
    elif kind in ("finetuned", "scratch"):
        from agents.data import pretrained_checkpoint
        from agents.training.config import TeacherConfig
        from agents.training.train import TrainConfig, train

        # As `simcity finetune` runs them: PPO alone, the same seed, the same steps.
        config = TrainConfig(total_steps=steps, teacher=TeacherConfig(days=0))
        if kind == "finetuned":
            config = dataclasses.replace(config, init_from=str(pretrained_checkpoint()))
        done = train(scenario, config, out_dir).step
    else:
        raise ValueError(f"unknown training job {kind!r}")
    wall = time.perf_counter() - started
    doc = {"kind": kind, "scenario": scenario, "steps": done, "wall_s": wall, "commit": _commit()}
    doc["steps_per_s"] = done / wall
    (out_dir / "timing.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def run_training(jobs: Sequence[tuple[str, str, int, str]]) -> dict[str, dict[str, Any]]:
    """Every job not yet done, two at a time; the timings of all."""
    todo = [job for job in jobs if not (Path(job[3]) / "timing.json").is_file()]
    for job in todo:
        Path(job[3]).mkdir(parents=True, exist_ok=True)
    if todo:
        with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
            for doc in pool.map(train_job, todo):
                print(f"  trained {doc['kind']} on {doc['scenario']}: {doc['wall_s'] / 60:.1f} min")
    return {job[0]: json.loads((Path(job[3]) / "timing.json").read_text()) for job in jobs}


# -- stage 2: evaluation --------------------------------------------------------------------

_ENVS: dict[str, Any] = {}


def make_policy(name: str, env: Any, out_dir: Path) -> Any:
    """The policy called ``name`` on ``env`` (a baseline, the generalist or a trained job)."""
    from agents.policies.baselines import make_baseline
    from agents.policies.checkpoint import TrainedPolicy

    if name == GENERALIST:
        from agents.data import pretrained_checkpoint

        policy = TrainedPolicy.from_checkpoint(pretrained_checkpoint(), env)
    elif name in ("attention", "finetuned", "scratch"):
        policy = TrainedPolicy.from_checkpoint(out_dir / name / "checkpoint.pt", env)
    elif name in ("sb3_tuned", "sb3_defaults"):
        from agents.references.sb3 import SB3Policy

        return SB3Policy(out_dir / name, env)
    else:
        return make_baseline(name, env)
    policy.name = name
    return policy


def episode_job(job: tuple[str, str, int, str]) -> dict[str, Any]:
    """One day ``(scenario, policy, seed, out_dir)`` -> its total cost and damage."""
    _threads()
    from agents.training.evaluate import run_episode
    from simcity.env import CityEnv

    scenario, name, seed, out = job
    env = _ENVS.get(scenario)
    if env is None:
        env = _ENVS[scenario] = CityEnv(scenario)
    summary = run_episode(env, make_policy(name, env, Path(out)), seed).summary
    return {"city": scenario, "policy": name, "seed": seed, "money": summary["money"]}


def run_episodes(jobs: Sequence[tuple[str, str, int, str]], log: Path) -> list[dict[str, Any]]:
    """Every day not yet in ``log`` (one JSON line per day, appended as they finish)."""
    done = []
    if log.is_file():
        done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    have = {(d["city"], d["policy"], d["seed"]) for d in done}
    todo = [job for job in jobs if job[:3] not in have]
    started, count = time.perf_counter(), 0
    if todo:
        with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool, log.open("a") as f:
            for row in pool.map(episode_job, todo, chunksize=1):
                f.write(json.dumps(row) + "\n")
                f.flush()
                done.append(row)
                count += 1
                if count % 20 == 0 or count == len(todo):
                    minutes = (time.perf_counter() - started) / 60
                    print(f"  {count}/{len(todo)} days ({minutes:.1f} min)", flush=True)
    return done


# -- stage 3: report ------------------------------------------------------------------------


def costs_of(rows: Sequence[dict[str, Any]], city: str, seeds: Sequence[int]) -> dict[str, Any]:
    """Cost per day per policy on ``city``, in the order of ``seeds`` (complete ones only)."""
    by: dict[str, dict[int, float]] = {}
    for row in rows:
        if row["city"] == city:
            by.setdefault(row["policy"], {})[row["seed"]] = row["money"]
    return {
        name: np.array([days[s] for s in seeds])
        for name, days in by.items()
        if all(s in days for s in seeds)
    }


def paired(a: np.ndarray, b: np.ndarray, scale: float) -> dict[str, float]:
    """Mean and 95% half-width of ``(b - a) / scale`` over the same days: positive when
    ``a`` costs less than ``b``, in units of ``scale``."""
    from agents.training.evaluate import mean_ci

    mean, half = mean_ci(((b - a) / scale).tolist())
    return {"mean": mean, "ci95": half, "low": mean - half, "high": mean + half}


def city_report(city: str, costs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Print and return one city's table and paired comparisons."""
    from agents.training.evaluate import mean_ci

    num_days = len(costs["uniform"])
    uniform, reference = costs["uniform"].mean(), costs[REFERENCE].mean()
    gap = uniform - reference
    print(f"\n{city}: total cost per day ($), {num_days} days; gap = uniform - {REFERENCE}")
    stats = {}
    for name, values in sorted(costs.items(), key=lambda item: item[1].mean()):
        mean, half = mean_ci(values.tolist())
        share = (uniform - mean) / gap
        stats[name] = {"mean": mean, "ci95": half, "gap_closed": share}
        print(f"  {name:14s} {mean:12,.0f} ± {half:8,.0f}   {share:7.1%} of the gap")
    classical = [name for name in CLASSICAL if name in costs]
    best = min(classical, key=lambda name: costs[name].mean())
    out: dict[str, Any] = {"days": num_days, "gap": gap, "best_classical": best, "stats": stats}
    comparisons = [(name, best) for name in ("attention", GENERALIST, "finetuned") if name in costs]
    if "finetuned" in costs and "scratch" in costs:
        comparisons.append(("finetuned", "scratch"))
    for name, rival in comparisons:
        lead = paired(costs[name], costs[rival], gap)
        out[f"{name}_vs_{rival}"] = lead
        print(
            f"  {name} vs {rival}: {lead['mean']:+.1%} of the gap (paired 95%: "
            f"{lead['low']:+.1%} to {lead['high']:+.1%})"
        )
    return out


def targets(
    reports: dict[str, dict[str, Any]],
    timings: dict[str, dict[str, Any]],
    home: str,
    tune_city: str,
) -> list[dict[str, Any]]:
    """Issue 19's targets, each with its figure and whether it is met (``home``: the city
    the policy trained on, downtown in the issue)."""
    rows = []
    down = reports.get(home, {})
    if "attention" in down.get("stats", {}):
        closed = down["stats"]["attention"]["gap_closed"]
        rows.append(
            {
                "target": f"{home}: trained closes >= 60% of the gap",
                "figure": closed,
                "met": closed >= TARGET_GAP,
            }
        )
        lead = down[f"attention_vs_{down['best_classical']}"]
        rows.append(
            {
                "target": f"{home}: trained leads {down['best_classical']} by >= 5 points, "
                "paired interval excluding 0",
                "figure": lead,
                "met": lead["mean"] >= TARGET_LEAD and lead["low"] > 0,
            }
        )
    for city, rep in reports.items():
        key = f"{GENERALIST}_vs_{rep['best_classical']}"
        if key in rep:
            lead = rep[key]
            rows.append(
                {
                    "target": f"{city}: generalist zero-shot at least as good as "
                    f"{rep['best_classical']} (paired interval)",
                    "figure": lead,
                    "met": lead["high"] >= 0,
                }  # not worse: the interval reaches 0 or above
            )
    tune = reports.get(tune_city, {})
    if "finetuned_vs_scratch" in tune:
        lead = tune["finetuned_vs_scratch"]
        rows.append(
            {
                "target": f"{tune_city}: fine-tuned beats scratch at equal steps, paired "
                "interval excluding 0",
                "figure": lead,
                "met": lead["low"] > 0,
            }
        )
    if "attention" in timings:
        minutes = timings["attention"]["wall_s"] / 60
        rows.append(
            {
                "target": f"training the {home} policy <= 30 min on 2 cores",
                "figure": minutes,
                "met": minutes <= TARGET_TRAIN_MIN,
            }
        )
    measured = Path(__file__).parent / "results" / "throughput.json"
    if measured.is_file():  # bench/throughput.py: PPO collect + update, one after the other
        ratio = json.loads(measured.read_text()).get("ratio_ours_over_sb3")
        if ratio is not None:
            rows.append(
                {
                    "target": "throughput >= 1x tuned SB3 (bench/results/throughput.json)",
                    "figure": ratio,
                    "met": ratio >= 1.0,
                }
            )
    print("\ntargets:")
    for row in rows:
        figure = row["figure"]
        if isinstance(figure, dict):
            shown = f"{figure['mean']:+.1%} [{figure['low']:+.1%}, {figure['high']:+.1%}]"
        elif "min" in row["target"]:
            shown = f"{figure:.1f} min"
        elif "throughput" in row["target"]:
            shown = f"{figure:.2f}x"
        else:
            shown = f"{figure:.1%}"
        print(f"  {'MET    ' if row['met'] else 'NOT MET'} {row['target']}: {shown}")
    return rows


def parse_seeds(text: str) -> dict[str, int]:
    """``"downtown=30,metro=6"`` -> days per city."""
    out = {}
    for part in text.split(","):
        city, _, count = part.partition("=")
        out[city.strip()] = int(count)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="Folder for runs, days and results.json")
    parser.add_argument("--split", choices=("validation", "test"), default="test")
    parser.add_argument("--scenario", default="downtown", help="The city the policy trains on")
    parser.add_argument("--steps", type=int, default=20_480)
    parser.add_argument("--finetune-city", default="helsinki")
    parser.add_argument("--finetune-steps", type=int, default=10_240)
    parser.add_argument("--seeds", default=",".join(f"{c}={n}" for c, n in CITIES.items()))
    parser.add_argument("--no-sb3", action="store_true", help="Skip both SB3 references")
    parser.add_argument("--skip-finetune", action="store_true", help="No fine-tuning jobs")
    parser.add_argument("--train-only", action="store_true", help="Stop after training")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    from agents.training import seeds as splits

    days_per_city = parse_seeds(args.seeds)
    seeds_of = {
        city: (splits.test_seeds if args.split == "test" else splits.validation_seeds)(num)
        for city, num in days_per_city.items()
    }

    print("training (two jobs at a time):")
    jobs = [("attention", args.scenario, args.steps, str(out_dir / "attention"))]
    if not args.no_sb3:
        jobs += [
            (k, args.scenario, args.steps, str(out_dir / k)) for k in ("sb3_tuned", "sb3_defaults")
        ]
    if not args.skip_finetune:
        jobs += [
            (k, args.finetune_city, args.finetune_steps, str(out_dir / k))
            for k in ("finetuned", "scratch")
        ]
    timings = run_training(jobs)
    if args.train_only:
        return

    print(f"\nevaluating on the {args.split} split:")
    episode_jobs = []
    for city, seeds in seeds_of.items():
        names = [*CLASSICAL, REFERENCE, GENERALIST]
        names += [job[0] for job in jobs if job[1] == city]
        episode_jobs += [(city, name, seed, str(out_dir)) for name in names for seed in seeds]
    rows = run_episodes(episode_jobs, out_dir / f"days_{args.split}.jsonl")

    reports = {
        city: city_report(city, costs_of(rows, city, seeds)) for city, seeds in seeds_of.items()
    }
    met = targets(reports, timings, args.scenario, args.finetune_city)
    commit = _commit()
    doc = {
        "command": "python " + " ".join(sys.argv),
        "commit": commit,
        "split": args.split,
        "training": timings,
        "cities": reports,
        "targets": met,
        "wall_s": time.perf_counter() - started,
    }
    (out_dir / "results.json").write_text(json.dumps(doc, indent=2, default=float) + "\n")
    print(f"\nwall {doc['wall_s'] / 60:.1f} min; {out_dir / 'results.json'}")


if __name__ == "__main__":
    main()
