"""Is the compute bill honest, and does it shape decisions? Issue 18's four figures, one run.

Not a test: measures, plays days and prints. Run from the repository root (after
``pip install -e '.[dev]'``; OMP_NUM_THREADS=1):

    python bench/green.py --capped runs/g18/capped/checkpoint.pt \\
        --conditioned runs/g18/cond/checkpoint.pt \\
        --separate 0=runs/g18/w0/checkpoint.pt --separate 80=runs/g18/w80/checkpoint.pt \\
        --separate 320=runs/g18/w320/checkpoint.pt [--episodes 20] [--out runs/green]

The checkpoints come from `simcity train` (the commands are in the README's "Carbon budget"
section); a part whose checkpoints are not given is skipped, with a line saying so.

(a) The policy's billed vs measured energy per decision on this CPU. Measured: the median
    latency of the attention policy's decision here (one thread, warm, `time.perf_counter`)
    times the power: RAPL where readable, else this CPU's stated power per busy core
    (`agents.green.calibrate_cpu.stated_core_power`). Billed: what the env bills for the same
    decision, time modelled (`DeviceProfile.call_seconds`: the call-overhead floor, or the
    FLOPs at achievable throughput) x the profile's call power, on two CPU profiles: the
    shipped datasheet `epyc_9654_2s`, and this CPU's profile calibrated on the 16-node `tiny`
    city (`simcity calibrate --device cpu`), so the downtown and metro decisions it bills are
    predictions, not the calibration's own measurement. Target: within 2x (0.5 to 2).
(b) Compute's share of the day's cost in every bundled scenario, under the posterior
    heuristic on one validation day (`bench/compute_share.py`).
(c) On `downtown_capped`: the trained policy vs the best cap-respecting heuristic (`paced`
    or `paced_carbon`, chosen on validation days), paired total cost a day on the test days
    with a 95% interval (target: the policy better, the interval excluding 0); and the
    policy's mean units in the 6 cleanest vs the 6 dirtiest local hours of the data centre's
    carbon trace (target ratio >= 1.5). Every day's kgCO2 is checked against the cap.
(d) On `downtown_carbon`: one policy trained over carbon weights (`--carbon-weights
    0,80,320`), told each weight, against a policy trained at that weight alone: total cost
    at that weight, paired over the test days (target: the conditioned policy not worse
    than the separately trained one beyond its 95% interval), and the conditioned policy's
    kgCO2 at each weight (the front must move with the weight).

Seeds (`agents.training.seeds`): every choice (the heuristic in (c), the tier rule in (tiers))
and the measurements that are no comparison ((a)'s observation, (b)) use validation days
(``2**33 + k``); the comparisons of (c) and (d) use test days (``2**32 + k``), read once, for
this report.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore", message=".*blank value")

NUM_EXTREME_HOURS = 6


def paired(a: list[float], b: list[float]) -> dict[str, float]:
    """Mean of a - b, day by day, with the half-width of its 95% Student-t interval."""
    from agents.training.evaluate import mean_ci

    mean, half = mean_ci(list(np.asarray(a) - np.asarray(b)))
    return {"mean": mean, "ci95": half}


def play_days(env: Any, policy: Any, seeds: list[int]) -> list[dict[str, Any]]:
    """One record per day: costs, kgCO2, and units and grid intensity by local hour."""
    from agents.training.evaluate import run_episode

    days = []
    for seed in seeds:
        episode = run_episode(env, policy, seed)
        infos = episode.infos
        hours = np.array([int(i["hour_local"]) % 24 for i in infos])
        units = np.array([i["units_used"] for i in infos])
        intensity = np.array([i["datacentre_g_per_kwh"] for i in infos])
        by_hour = [(units[hours == h].mean(), intensity[hours == h].mean()) for h in range(24)]
        days.append(
            {
                "seed": seed,
                "cost": float(sum(i["cost_total"] for i in infos)),
                "service": float(sum(i["cost_damage"] + i["cost_estimation"] for i in infos)),
                "kgco2": episode.summary["compute_kgco2"],
                "units_by_hour": [u for u, _ in by_hour],
                "intensity_by_hour": [g for _, g in by_hour],
            }
        )
    return days


def clean_dirty_ratio(days: list[dict[str, Any]]) -> dict[str, float]:
    """Mean units in the cleanest and dirtiest hours (of the mean day's intensity)."""
    units = np.mean([d["units_by_hour"] for d in days], axis=0)  # (24,)
    intensity = np.mean([d["intensity_by_hour"] for d in days], axis=0)  # (24,)
    order = np.argsort(intensity, kind="stable")
    clean = float(units[order[:NUM_EXTREME_HOURS]].mean())
    dirty = float(units[order[-NUM_EXTREME_HOURS:]].mean())
    return {"clean_units": clean, "dirty_units": dirty, "ratio": clean / dirty}


def part_a() -> dict[str, Any]:
    """Billed vs measured energy of one decision on this CPU."""
    import torch

    from agents.green.calibrate_cpu import (
        calibrate_cpu,
        cpu_model_name,
        median_latency,
        stated_core_power,
        torch_threads,
    )
    from agents.policies.attention import AttentionPolicy
    from agents.policies.checkpoint import TrainedPolicy
    from simcity.compute.measure import RaplEnergyMeter
    from simcity.config.devices import device_profile
    from simcity.env import CityEnv

    torch.set_num_threads(1)
    cpu = cpu_model_name()
    rapl, why = RaplEnergyMeter.available()
    stated = stated_core_power(cpu)
    calibrated = calibrate_cpu(env=CityEnv("tiny"), name="this_cpu", seconds=2.0).profile
    shipped = device_profile("epyc_9654_2s")
    print(f"\n(a) billed vs measured energy per decision on this CPU ({cpu})")
    print(f"    power: {'RAPL' if rapl else 'stated, not measured (' + why + '): ' + stated.why}")
    print(
        f"    this CPU calibrated on tiny: call floor {calibrated.call_overhead_s * 1e3:.3g} ms, "
        f"{calibrated.achievable_flop_s / 1e9:.3g} GFLOP/s, call power "
        f"{calibrated.call_busy_power_w:.3g} W ({calibrated.provenance})"
    )
    print(
        f"    {'city':9s} {'nodes':>6s} {'MFLOP':>7s} {'measured ms':>11s} {'measured mJ':>11s} "
        f"{'profile':>13s} {'billed ms':>9s} {'billed mJ':>9s} {'billed/meas.':>12s}"
    )
    from agents.training.seeds import validation_seeds

    rows = []
    torch.manual_seed(0)
    model = AttentionPolicy()
    for city in ("downtown", "metro"):
        env = CityEnv(city)
        policy = TrainedPolicy(model, env)
        obs, _ = env.reset(seed=validation_seeds(1)[0])
        with torch_threads(1):
            latency = median_latency(lambda p=policy, o=obs: p.act(o), seconds=3.0).median_s
        if rapl:
            meter = RaplEnergyMeter()
            idle = meter.measure(lambda: time.sleep(0.05), repeats=40).power_w
            busy = meter.measure(lambda p=policy, o=obs: p.act(o), repeats=2000).power_w
            measured_j, power_source = latency * max(busy - idle, 0.0), "RAPL"
        else:
            measured_j, power_source = latency * stated.w_per_core, "stated"
        for profile in (shipped, calibrated):
            seconds = profile.call_seconds(policy.flops_per_decision)
            billed_j = profile.call_energy_j(seconds)
            ratio = billed_j / measured_j
            rows.append(
                {
                    "city": city,
                    "nodes": env.city.num_nodes,
                    "flop": policy.flops_per_decision,
                    "measured_s": latency,
                    "measured_j": measured_j,
                    "power_source": power_source,
                    "profile": profile.name,
                    "profile_provenance": profile.provenance,
                    "billed_s": seconds,
                    "billed_j": billed_j,
                    "ratio": ratio,
                    "within_2x": 0.5 <= ratio <= 2.0,
                }
            )
            print(
                f"    {city:9s} {env.city.num_nodes:6d} {policy.flops_per_decision / 1e6:7.2f} "
                f"{latency * 1e3:11.3f} {measured_j * 1e3:11.3f} {profile.name:>13s} "
                f"{seconds * 1e3:9.3f} {billed_j * 1e3:9.3f} {ratio:12.2f}"
                f"{'' if 0.5 <= ratio <= 2.0 else '  (not within 2x)'}"
            )
    return {"cpu": cpu, "rapl": rapl, "stated_w_per_core": stated.w_per_core, "rows": rows}


def part_b() -> list[dict[str, Any]]:
    """Compute's share of the day's cost in every bundled scenario."""
    from agents.policies.baselines import make_baseline
    from agents.training.evaluate import run_episode
    from agents.training.seeds import validation_seeds
    from simcity.config.scenario import bundled_scenarios
    from simcity.env import CityEnv

    print("\n(b) compute's share of the day's cost, posterior heuristic, one validation day")
    print(f"    {'scenario':22s} {'compute $':>10s} {'day $':>12s} {'share':>9s} {'kgCO2':>8s}")
    rows = []
    for name in bundled_scenarios():
        if name == "metro_xl":  # 10k nodes: minutes a day; its bill is metro's per node
            continue
        env = CityEnv(name)
        episode = run_episode(env, make_baseline("posterior", env), validation_seeds(1)[0])
        compute = sum(i["cost_energy"] + i["cost_carbon"] for i in episode.infos)
        total = sum(i["cost_total"] for i in episode.infos)
        kg = episode.summary["compute_kgco2"]
        rows.append({"scenario": name, "compute": compute, "total": total, "kgco2": kg})
        print(f"    {name:22s} {compute:10.2f} {total:12,.0f} {compute / total:9.4%} {kg:8.3f}")
    return rows


def part_tiers(validation: int) -> dict[str, Any]:
    """Why the default scenario has one tier: the VLM tier's worth on downtown_vlm."""
    from agents.policies.baselines import PosteriorPolicy
    from agents.policies.tiers import TierRulePolicy
    from agents.training.seeds import validation_seeds
    from simcity.env import CityEnv

    env = CityEnv("downtown_vlm")
    seeds = validation_seeds(validation)
    rows = {}
    for tier, name in enumerate(t.name for t in env.scenario.compute.tiers):
        policy = TierRulePolicy(PosteriorPolicy(), env.scenario)
        policy.tier = tier
        days = play_days(env, policy, seeds)
        rows[name] = {k: float(np.mean([d[k] for d in days])) for k in ("cost", "service")}
    print(f"\n(tiers) downtown_vlm, posterior weights on one tier, {validation} validation days")
    for name, row in rows.items():
        print(f"    {name:9s} ${row['cost']:,.0f}/day (service ${row['service']:,.0f})")
    return rows


def part_c(checkpoint: Path, episodes: int, validation: int) -> dict[str, Any]:
    """The trained policy vs the best cap-respecting heuristic on downtown_capped."""
    from agents.policies.baselines import make_baseline
    from agents.policies.checkpoint import TrainedPolicy
    from agents.training.seeds import test_seeds, validation_seeds
    from simcity.env import CityEnv

    env = CityEnv("downtown_capped")
    cap = env.scenario.compute.carbon_budget_kg_per_day
    val_seeds = validation_seeds(validation)
    val = {n: play_days(env, make_baseline(n, env), val_seeds) for n in ("paced", "paced_carbon")}
    best = min(val, key=lambda n: np.mean([d["cost"] for d in val[n]]))
    seeds = test_seeds(episodes)
    heuristic = play_days(env, make_baseline(best, env), seeds)
    trained = play_days(env, TrainedPolicy.from_checkpoint(checkpoint, env), seeds)
    diff = paired([d["cost"] for d in trained], [d["cost"] for d in heuristic])
    worst_kg = max(d["kgco2"] for d in trained + heuristic)
    ratio = clean_dirty_ratio(trained)
    better = diff["mean"] + diff["ci95"] < 0.0
    print(f"\n(c) downtown_capped (cap {cap} kg/day), {episodes} test days")
    print(
        f"    best cap-respecting heuristic on {validation} validation days: {best} "
        + ", ".join(f"{n} ${np.mean([d['cost'] for d in v]):,.0f}" for n, v in val.items())
    )
    print(
        f"    trained ${np.mean([d['cost'] for d in trained]):,.0f}/day, {best} "
        f"${np.mean([d['cost'] for d in heuristic]):,.0f}/day; paired trained - {best}: "
        f"{diff['mean']:+,.0f} ± {diff['ci95']:,.0f} (target < 0, interval excluding 0: "
        f"{'met' if better else 'NOT met'})"
    )
    print(
        f"    trained units, 6 cleanest h {ratio['clean_units']:.2f} vs 6 dirtiest h "
        f"{ratio['dirty_units']:.2f}: ratio {ratio['ratio']:.2f} (target >= 1.5: "
        f"{'met' if ratio['ratio'] >= 1.5 else 'NOT met'}); heuristic ratio "
        f"{clean_dirty_ratio(heuristic)['ratio']:.2f}"
    )
    print(f"    most kgCO2 on any day: {worst_kg:.4f} (cap {cap})")
    return {
        "checkpoint": str(checkpoint),
        "best_heuristic": best,
        "validation": {n: [d["cost"] for d in v] for n, v in val.items()},
        "trained": trained,
        "heuristic": heuristic,
        "paired_cost": diff,
        "target_cost_met": better,
        "clean_dirty": ratio,
        "heuristic_clean_dirty": clean_dirty_ratio(heuristic),
        "target_ratio_met": ratio["ratio"] >= 1.5,
        "max_kgco2": worst_kg,
        "cap_kg": cap,
    }


def part_d(conditioned: Path, separate: dict[float, Path], episodes: int) -> dict[str, Any]:
    """One weight-conditioned policy vs policies trained at one weight each."""
    from agents.policies.checkpoint import TrainedPolicy
    from agents.training.seeds import test_seeds
    from simcity.config.scenario import load_scenario
    from simcity.env import CityEnv, with_carbon_weight

    base = load_scenario("downtown_carbon")
    seeds = test_seeds(episodes)
    print(f"\n(d) downtown_carbon, {episodes} test days: conditioned vs separately trained")
    print(
        f"    {'weight':>6s} {'cond. $':>10s} {'cond. kgCO2':>11s} {'separate $':>10s} "
        f"{'sep. kgCO2':>10s} {'cond. - sep. $':>18s}"
    )
    rows = []
    for weight, path in sorted(separate.items()):
        env = CityEnv(with_carbon_weight(base, weight))
        cond = play_days(env, TrainedPolicy.from_checkpoint(conditioned, env), seeds)
        sep = play_days(env, TrainedPolicy.from_checkpoint(path, env), seeds)
        diff = paired([d["cost"] for d in cond], [d["cost"] for d in sep])
        met = diff["mean"] - diff["ci95"] <= 0.0
        rows.append(
            {
                "weight": weight,
                "conditioned_cost": float(np.mean([d["cost"] for d in cond])),
                "conditioned_kgco2": float(np.mean([d["kgco2"] for d in cond])),
                "separate_cost": float(np.mean([d["cost"] for d in sep])),
                "separate_kgco2": float(np.mean([d["kgco2"] for d in sep])),
                "paired_cost": diff,
                "target_met": met,
            }
        )
        r = rows[-1]
        print(
            f"    {weight:6g} {r['conditioned_cost']:10,.0f} {r['conditioned_kgco2']:11.3f} "
            f"{r['separate_cost']:10,.0f} {r['separate_kgco2']:10.3f} "
            f"{diff['mean']:+9,.0f} ± {diff['ci95']:6,.0f}{'' if met else '  (NOT met)'}"
        )
    kg = [r["conditioned_kgco2"] for r in rows]
    moves = len(kg) > 1 and max(kg) - min(kg) > 1e-6 * max(abs(k) for k in kg)
    print(f"    conditioned kgCO2 moves with the weight: {'yes' if moves else 'NO'} {kg}")
    return {"conditioned": str(conditioned), "rows": rows, "front_moves": moves}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capped", type=Path, default=None)
    parser.add_argument("--conditioned", type=Path, default=None)
    parser.add_argument("--separate", action="append", default=[], metavar="WEIGHT=CHECKPOINT")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--validation", type=int, default=10)
    parser.add_argument("--parts", default="abtcd")
    parser.add_argument("--out", type=Path, default=Path("runs/green"))
    args = parser.parse_args()

    from simcity.records.files import write_atomic

    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    document: dict[str, Any] = {"command": " ".join(sys.argv), "commit": commit}
    started = time.perf_counter()
    if "a" in args.parts:
        document["a"] = part_a()
    if "b" in args.parts:
        document["b"] = part_b()
    if "t" in args.parts:
        document["tiers"] = part_tiers(args.validation)
    if "c" in args.parts:
        if args.capped is None:
            print("\n(c) skipped: no --capped checkpoint")
        else:
            document["c"] = part_c(args.capped, args.episodes, args.validation)
    if "d" in args.parts:
        separate = {float(w): Path(p) for w, p in (s.split("=", 1) for s in args.separate)}
        if args.conditioned is None or not separate:
            print("\n(d) skipped: no --conditioned and --separate checkpoints")
        else:
            document["d"] = part_d(args.conditioned, separate, args.episodes)
    document["minutes"] = (time.perf_counter() - started) / 60
    out = args.out / "green.json"
    write_atomic(out, json.dumps(document, indent=2, default=_plain) + "\n")
    print(f"\nwrote {out} ({document['minutes']:.1f} min)")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(type(value).__name__)


if __name__ == "__main__":
    main()
