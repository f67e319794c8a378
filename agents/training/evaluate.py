"""Run policies in CityEnv: episodes, per-episode summaries, means with 95% intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from agents.policies.protocol import Policy
from simcity.env import CityEnv
from simcity.records.results import day_summary

KPIS: tuple[tuple[str, str], ...] = (
    ("damage", "damage $"),
    ("detection_rate", "detection rate"),
    ("mean_detection_delay_min", "detection delay min"),
    ("estimation_error", "estimation error"),
    ("compute_kwh", "compute kWh"),
    ("compute_kgco2", "compute kgCO2"),
    ("money", "total cost $"),
    ("reward", "reward"),
)


@dataclass(frozen=True)
class Episode:
    """One episode: its seed, the info of every step and its summary."""

    seed: int
    infos: list[dict[str, Any]]
    summary: dict[str, float]


def run_episode(
    env: CityEnv, policy: Policy, seed: int, on_step: Callable[[dict[str, Any]], None] | None = None
) -> Episode:
    """Play one episode of ``policy`` from ``env.reset(seed=seed)``; the env bills each of
    its decisions: ``policy.flops_per_decision`` on the device it says it runs on, at its
    measured latency where it has one (optional attributes ``device``, ``latency_s``,
    ``precision``; see `simcity.compute.bill.PolicyCompute`), and is left billing what it
    billed before."""
    keys = ("policy_flop_per_decision", "policy_device", "policy_latency_s", "policy_precision")
    billed = {key: getattr(env, key) for key in keys}
    infos: list[dict[str, Any]] = []
    try:
        options = {
            "policy_flop_per_decision": float(policy.flops_per_decision),
            "policy_device": getattr(policy, "device", None),
            "policy_latency_s": getattr(policy, "latency_s", None),
            "policy_precision": getattr(policy, "precision", "fp32"),
        }
        obs, _ = env.reset(seed=seed, options=options)
        policy.reset(seed)
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            info = {k: v for k, v in info.items() if k != "node_cost"}  # scalars only
            infos.append(info)
            if on_step is not None:
                on_step(info)
            if terminated or truncated:
                break
    finally:
        for key, value in billed.items():
            setattr(env, key, value)
    assert env.world is not None
    return Episode(seed, infos, episode_summary(infos, env.world.dt_min, env))


def episode_summary(
    infos: Sequence[dict[str, Any]], dt_min: float, env: CityEnv
) -> dict[str, float]:
    """Service, error, compute and money of one episode, plus the world's day KPIs."""

    def total(key: str) -> float:
        return float(sum(info[key] for info in infos))

    incidents, detected = total("incidents_new"), total("incidents_detected")
    world = env.world
    assert world is not None
    return {
        "damage": total("damage"),
        "incidents": incidents,
        "detected": detected,
        "missed": incidents - detected,
        "detection_rate": detected / incidents if incidents else 1.0,
        "mean_detection_delay_min": total("detection_delay_sum_min") / detected
        if detected
        else 0.0,
        "estimation_error": total("estimation_error") / len(infos),
        "units_used_mean": total("units_used") / len(infos),
        "compute_kwh": total("compute_kwh"),
        "compute_policy_kwh": total("compute_policy_kwh"),
        "compute_kgco2": total("compute_gco2") / 1000.0,
        "compute_money": total("cost_energy") + total("compute_carbon_cost"),
        "money": total("cost_total"),
        "reward": total("reward"),
        **{f"city_{k}": v for k, v in day_summary(world.records, dt_min).items()},
    }


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t confidence interval (0 for one value).

    >>> mean_ci([1.0, 2.0, 3.0])
    (2.0, 2.4841377118437637)
    """
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return float(data.mean()), 0.0
    sem = data.std(ddof=1) / np.sqrt(len(data))
    return float(data.mean()), float(sem * stats.t.ppf(0.5 + confidence / 2, len(data) - 1))


def aggregate(summaries: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and 95% half-width of every summary field over episodes."""
    out = {}
    for key in summaries[0]:
        mean, half = mean_ci([s[key] for s in summaries])
        out[key] = {"mean": mean, "ci95": half}
    return out


def compare_policies(
    env: CityEnv,
    policies: Sequence[Policy],
    seeds: Sequence[int],
    on_episode: Callable[[], None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Every policy (its FLOPs per decision billed) on the same seeds, aggregated."""
    table = {}
    for policy in policies:
        summaries = []
        for seed in seeds:
            summaries.append(run_episode(env, policy, seed).summary)
            if on_episode is not None:
                on_episode()
        table[policy.name] = aggregate(summaries)
    return table
