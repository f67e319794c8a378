"""One policy for many cities: PPO (after a short teacher lesson) over generated cities.

`sample_city` draws a city and its day from a distribution of generated scenarios;
`train_generalist` trains one `AttentionPolicy` with one Adam over a stream of them: per
city it builds that city's envs, credit and learner (`agents.training.rollout`,
`agents.training.credit`, `agents.training.learner`), runs a few teacher DAgger days there
(`agents.training.teacher`), then K PPO updates, and writes the checkpoint (the format of
`agents.training.train`, so `TrainedPolicy.from_checkpoint` plays it) atomically.
The network's weights do not depend on N, so N may change from city to city.

The distribution (per city, independently; log-U[a, b] is log-uniform):

- layout: grid, ring-radial or random geometric, each 1/3;
- size: with probability ``large_share`` (0.1) log-U[250, ``max_nodes``], else
  log-U[50, min(250, ``max_nodes``)] nodes (the generator rounds a grid or ring-radial to
  its nearest shape); ``max_nodes`` defaults to 1,000;
- city seed: ``CITY_SEED_BASE`` (3 * 2**40) + U{0 .. 2**32 - 1}: far from the bundled
  scenarios' seeds (1 to 17), so no generated city repeats a bundled one;
- a city centre from `ORIGINS` (none is a bundled scenario's city) and its time zone, a
  day of 2022, people 300-1,500 a node, jobs 0.5-1.5 per resident, trips per resident in
  the base hour log-U[0.05, 0.5];
- monitoring budget log-U[0.01, 0.5] units a node (the bundled scenarios span 0.008 in
  metro to 1.25 in tiny), at least 1 unit;
- hotspot spread (``incidents.hotspot_sigma``) U[0.3, 1.3]; sensor density: traffic
  counters 0-3 and energy meters 0-2 a node, air-quality share U[0.1, 0.8];
- carbon: the bundled CISO or ERCO 2022 trace, a constant log-U[50, 700] g/kWh, or a daily
  curve, each 1/4; electricity log-U[0.05, 0.40] $/kWh, carbon log-U[0.02, 0.30] $/kg.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.policies.attention import AttentionPolicy
from agents.policies.checkpoint import save_checkpoint
from agents.training.buffer import Batch
from agents.training.config import TrainConfig
from agents.training.credit import make_credit
from agents.training.learner import make_learner, set_learning_rate
from agents.training.ppo_math import RunningStd, linear_schedule
from agents.training.resume import fresh_start, replay_episodes
from agents.training.rollout import collect_rollout, make_envs
from agents.training.teacher import learn_from_teacher
from agents.training.update import ppo_update
from simcity.config.scenario import Scenario
from simcity.errors import SimcityError

CITY_SEED_BASE = 3 * 2**40
"""Generated cities' seeds start here (bundled scenarios use seeds 1 to 17)."""
CHECKPOINT_NAME = "checkpoint.pt"
LAYOUTS = ("grid", "ring_radial", "random_geometric")
SMALL_NODES = (50, 250)
ORIGINS = (
    ("Chicago", -87.6298, 41.8781, "America/Chicago"),
    ("Madrid", -3.7038, 40.4168, "Europe/Madrid"),
    ("Tokyo", 139.6917, 35.6895, "Asia/Tokyo"),
    ("Sydney", 151.2093, -33.8688, "Australia/Sydney"),
    ("Sao Paulo", -46.6333, -23.5505, "America/Sao_Paulo"),
    ("Nairobi", 36.8219, -1.2921, "Africa/Nairobi"),
    ("Delhi", 77.2090, 28.6139, "Asia/Kolkata"),
    ("Toronto", -79.3832, 43.6532, "America/Toronto"),
    ("Berlin", 13.4050, 52.5200, "Europe/Berlin"),
    ("Phoenix", -112.0740, 33.4484, "America/Phoenix"),
)
"""City centres and time zones (no bundled scenario's city among them)."""


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def sample_size(rng: np.random.Generator, max_nodes: int = 1000, large_share: float = 0.1) -> int:
    """Nodes of the next city: the mix of the module doc."""
    if max_nodes < SMALL_NODES[0]:
        raise SimcityError(f"is {max_nodes}", field="max_nodes", expected=">= 50")
    small_high = min(SMALL_NODES[1], max_nodes)
    large = rng.random() < large_share and max_nodes > SMALL_NODES[1]
    low, high = (SMALL_NODES[1], max_nodes) if large else (SMALL_NODES[0], small_high)
    return round(_log_uniform(rng, low, high))


def _layout(rng: np.random.Generator, kind: str, n: int, high: int) -> dict[str, Any]:
    """The generated city section of ``kind`` with about ``n`` nodes (the shape's nearest,
    kept within [`SMALL_NODES` [0], ``high``]), and its reach (km)."""
    low = SMALL_NODES[0]
    if kind == "grid":
        rows = max(2, round(math.sqrt(n * rng.uniform(0.6, 1.6))))
        cols = max(2, round(n / rows))
        cols += math.ceil(max(0, low - rows * cols) / rows)  # within [low, high]
        cols -= math.ceil(max(0, rows * cols - high) / rows)
        spacing = rng.uniform(0.15, 0.4)
        section = {"source": "grid", "rows": rows, "cols": cols, "spacing_km": spacing}
        section["arterial_every"] = int(rng.integers(3, 6))
        return {**section, "_reach": spacing * max(rows, cols) / 2}
    if kind == "ring_radial":
        spokes = int(rng.integers(6, 25))
        rings = max(1, round((n - 1) / spokes))
        rings += math.ceil(max(0, low - 1 - rings * spokes) / spokes)  # within [low, high]
        rings -= math.ceil(max(0, rings * spokes + 1 - high) / spokes)
        spacing = rng.uniform(0.4, 1.0)
        section = {"source": "ring_radial", "num_rings": rings, "num_spokes": spokes}
        return {**section, "ring_spacing_km": spacing, "_reach": rings * spacing}
    density = _log_uniform(rng, 5.0, 20.0)  # nodes per km2: metro's 5 to downtown's 18
    radius = math.sqrt(n / (math.pi * density))
    link = max(0.05, radius * math.sqrt(rng.uniform(3.0, 6.0) / n))  # 3-6 near neighbours
    section = {"source": "random_geometric", "num_nodes": n, "radius_km": radius}
    return {**section, "link_km": link, "_reach": radius}


def sample_city(
    rng: np.random.Generator,
    base: Scenario,
    *,
    max_nodes: int = 1000,
    large_share: float = 0.1,
    name: str = "generalist",
) -> Scenario:
    """A generated city and its day drawn from ``rng`` (the module doc's distribution), on
    ``base``'s other settings (its clock, reward, compute device and tiers), validated."""
    kind = LAYOUTS[int(rng.integers(len(LAYOUTS)))]
    n = sample_size(rng, max_nodes, large_share)
    section = _layout(rng, kind, n, max_nodes)
    reach = section.pop("_reach")
    place, lon, lat, zone = ORIGINS[int(rng.integers(len(ORIGINS)))]
    people = n * rng.uniform(300.0, 1500.0)
    section |= {
        "origin_lon": lon,
        "origin_lat": lat,
        "population": people,
        "jobs": people * rng.uniform(0.5, 1.5),
        "cbd_km": max(0.2, reach * rng.uniform(0.3, 0.7)),
        "zone_share": rng.uniform(0.2, 0.6) if n <= SMALL_NODES[1] else rng.uniform(0.1, 0.25),
    }
    carbon: dict[str, Any]
    source = int(rng.integers(4))
    if source < 2:
        carbon = {"source": "trace", "path": ("CISO", "ERCO")[source]}
    elif source == 2:
        carbon = {"source": "constant", "intensity_g_per_kwh": _log_uniform(rng, 50.0, 700.0)}
    else:
        mean = _log_uniform(rng, 80.0, 600.0)
        carbon = {"source": "daily", "mean_g_per_kwh": mean}
        carbon |= {"amplitude_g_per_kwh": mean * rng.uniform(0.1, 0.5)}
        carbon |= {"min_hour": rng.uniform(10.0, 16.0)}
    raw = base.model_dump(mode="python", exclude={"node_names", "events"})
    seed = CITY_SEED_BASE + int(rng.integers(2**32))
    raw["name"] = f"{name}-{kind}-{n}-{seed - CITY_SEED_BASE}"
    raw["title"] = f"Generated {kind.replace('_', '-')} city of about {n} nodes near {place}"
    raw["description"] = "Drawn by agents.training.generalist.sample_city."
    raw["seed"] = seed
    day = dt.date(2022, 1, 1) + dt.timedelta(days=int(rng.integers(365)))
    raw["time"] |= {"date": day, "timezone": zone}
    raw["city"] = section
    raw["traffic"] |= {"demand": "gravity"}
    raw["traffic"]["base_trips_veh_h"] = people * _log_uniform(rng, 0.05, 0.5)
    raw["traffic"]["solve_every_steps"] = 1 if n <= 400 else 4
    raw["weather"] |= {"temp_mean_c": rng.uniform(0.0, 32.0)}
    raw["weather"] |= {"temp_amplitude_c": rng.uniform(2.0, 8.0)}
    raw["carbon"] = carbon
    raw["datacentre_carbon"] = None
    raw["sensors"] |= {
        "traffic_counters_per_node": int(rng.integers(0, 4)),
        "air_quality_share": rng.uniform(0.1, 0.8),
        "energy_meters_per_node": int(rng.integers(0, 3)),
    }
    raw["incidents"] |= {"hotspot_sigma": rng.uniform(0.3, 1.3), "scheduled": ()}
    budget = max(1.0, n * _log_uniform(rng, 0.01, 0.5))
    raw["monitoring"] |= {"budget_units": budget}
    raw["compute"] |= {
        "price_per_kwh": _log_uniform(rng, 0.05, 0.40),
        "carbon_price_per_t": 1000.0 * _log_uniform(rng, 0.02, 0.30),
    }
    return Scenario.model_validate(raw, context={"base_dir": Path.cwd()})


@dataclass(frozen=True)
class CityStats:
    """What one city of a generalist run did; ``progress`` gets one after every city."""

    index: int
    scenario: str
    num_nodes: int
    updates: int  # PPO updates on this city
    step: int  # env steps so far, over the whole run
    mean_episode_reward: float  # of the episodes finished on this city (nan: none)
    teacher_loss: float  # the last teacher fit's loss (nan: no teacher)
    wall_s: float


@dataclass(frozen=True)
class GeneralistResult:
    checkpoint_path: Path
    cities: tuple[CityStats, ...]
    step: int
    update: int


def train_generalist(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    num_cities: int,
    updates_per_city: int,
    base: Scenario,
    max_nodes: int = 1000,
    large_share: float = 0.1,
    critic_updates_per_city: int = 1,
    progress: Callable[[CityStats], None] | None = None,
) -> GeneralistResult:
    """Train one `AttentionPolicy` (one Adam) over ``num_cities`` cities drawn by
    `sample_city` from ``config.seed``; write ``out_dir/checkpoint.pt`` after every city.

    Per city: ``config.teacher`` days of the teacher (DAgger; none with ``days`` 0), then
    ``updates_per_city`` PPO updates of ``config``'s batch, the first
    ``critic_updates_per_city`` of them on the value head only (a new city's returns have
    a new scale). The learning rate anneals over all the run's updates.
    """
    if num_cities < 1 or updates_per_city < 1:
        raise SimcityError(
            f"num_cities {num_cities}, updates_per_city {updates_per_city}",
            field="generalist",
            expected="both >= 1",
        )
    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / CHECKPOINT_NAME
    if config.model.num_tiers != base.compute.num_tiers:
        sized = dataclasses.replace(config.model, num_tiers=base.compute.num_tiers)
        config = dataclasses.replace(config, model=sized)
    torch.manual_seed(config.seed)
    model = AttentionPolicy(config.model)
    optimizer: torch.optim.Adam | None = None
    rng = np.random.default_rng([config.seed, 0x6E4E])
    total_updates = num_cities * updates_per_city
    update = step = 0
    cities: list[CityStats] = []
    for index in range(num_cities):
        started = time.perf_counter()
        scenario = sample_city(rng, base, max_nodes=max_nodes, large_share=large_share)
        # Each city's days come from its own seed: no two cities replay the same days.
        city_config = dataclasses.replace(config, seed=config.seed * 100_003 + index)
        envs = make_envs(scenario, city_config)
        city = envs.first.city
        credit = make_credit(city_config, city, scenario.reward.scale, scenario.monitoring.spill)
        teacher_loss = math.nan
        if config.learns_from_teacher:
            teacher_loss = learn_from_teacher(model, envs.first, city_config)[-1]
        learner = make_learner(model, city_config, city)
        if optimizer is None:
            optimizer = learner.optimizer
        learner = dataclasses.replace(learner, optimizer=optimizer)  # one Adam for the run
        start = fresh_start(config.num_envs, city.num_nodes * config.model.num_tiers + 1)
        episodes = replay_episodes(envs, start, learner.flops_per_decision)
        returns_std = RunningStd()
        finished: list[float] = []
        for k in range(updates_per_city):
            lr = linear_schedule(config.ppo_lr, 0.0, update / total_updates)
            set_learning_rate(optimizer, lr)
            rollout, episodes = collect_rollout(
                envs,
                learner,
                credit,
                episodes,
                num_steps=config.num_steps,
                value_std=returns_std.std,
            )
            advantages, returns = credit.advantages(rollout)
            returns_std.update(returns)
            batch = Batch.of(rollout, advantages, returns, returns_std.std)
            ppo_update(learner, batch, credit, config, critic_only=k < critic_updates_per_city)
            finished += rollout.finished
            update += 1
        step += episodes.step
        envs.vector.close()
        save_checkpoint(
            checkpoint_path,
            model_config=config.model,
            state_dict=model.state_dict(),
            optimizer_state=optimizer.state_dict(),
            step=step,
            update=update,
            rng_states={"torch": torch.get_rng_state()},
            extra={
                "train_config": config.as_dict(),
                "scenario": "generalist",
                "flops_per_decision": learner.flops_per_decision,
                "episode_actions": torch.zeros(0, config.num_envs, 1),
                "returns_std": returns_std.state(),
                "generalist": {
                    "cities": index + 1,
                    "updates_per_city": updates_per_city,
                    "max_nodes": max_nodes,
                    "large_share": large_share,
                },
            },
        )
        stats = CityStats(
            index=index,
            scenario=scenario.name,
            num_nodes=city.num_nodes,
            updates=updates_per_city,
            step=step,
            mean_episode_reward=float(np.mean(finished)) if finished else math.nan,
            teacher_loss=teacher_loss,
            wall_s=time.perf_counter() - started,
        )
        cities.append(stats)
        if progress is not None:
            progress(stats)
    return GeneralistResult(checkpoint_path, tuple(cities), step, update)
