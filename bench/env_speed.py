"""Speed of `CityEnv.step`: steps/s, node-steps/s, and where a step's time goes.

Not a test: prints rates, a per-subsystem breakdown and the ratio to the target of
100,000 node-steps/s on downtown. Run from the repository root (after
``pip install -e .``, or with ``PYTHONPATH=.``):

    python bench/env_speed.py [--episodes 3] [--scenarios tiny,downtown,metro]
    python bench/env_speed.py --profile downtown   # cProfile of warm episodes' steps

Each scenario plays ``--episodes`` days under the uniform policy (seeds 0, 1, ...) in one
env. The first episode fills the city's traffic cache (the baseline equilibrium of every
step); later ones reuse it, but still solve the re-routings around the capacity cuts of
their own accidents. Both are reported. Metro's day is cut to `SHORT_DAYS` steps: later
its incident rates diverge (see the report). Timers wrap simcity's functions by
monkeypatching in this process (simcity is not edited); nested timers are reported as
parts of their parents, and "record, SimPy overhead" is the world's clock time outside its
subsystems' step functions. Timer overhead is about a microsecond per wrapped call.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TypeVar

from agents.policies.baselines import make_baseline
from simcity import world as world_module
from simcity.config.scenario import load_scenario
from simcity.env import CityEnv
from simcity.traffic import day as traffic_day_module

TARGET_NODE_STEPS_S = 100_000.0
SHORT_DAYS = {"metro": 16}
"""Steps per episode where a full day does not run (metro's incident rates diverge)."""

SECONDS: defaultdict[str, float] = defaultdict(float)
CALLS: defaultdict[str, int] = defaultdict(int)
F = TypeVar("F", bound=Callable[..., Any])

# (label, timer, parent): the rows of the breakdown, children after their parent.
ROWS: tuple[tuple[str, str, str | None], ...] = (
    ("action -> allocation", "allocation", "step"),
    ("world advance (SimPy run)", "advance", "step"),
    ("  traffic step", "traffic", "advance"),
    ("    assignment, baseline day", "assign_baseline", "traffic"),
    ("    assignment, around cuts", "assign_cuts", "traffic"),
    ("  energy step", "energy", "advance"),
    ("  true state", "true_state", "advance"),
    ("  monitoring step", "monitoring", "advance"),
    ("  record, SimPy overhead", "simpy", "advance"),
    ("costs -> info", "costs", "step"),
    ("observation encoding", "observation", "step"),
    ("env step, other", "step_other", "step"),
)


def timed(key: str, fn: F) -> F:
    """``fn``, adding its wall time to ``SECONDS[key]``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SECONDS[key] += time.perf_counter() - start
            CALLS[key] += 1

    return wrapper  # type: ignore[return-value]


def instrument() -> None:
    """Wrap the subsystems' entry points with timers (module globals and methods)."""
    day = traffic_day_module.TrafficDay
    original_assign = day._assign

    def assign(self: Any, step: int, capacity_factor: Any, *args: Any, **kwargs: Any) -> Any:
        key = "assign_baseline" if capacity_factor is None else "assign_cuts"
        return timed(key, original_assign)(self, step, capacity_factor, *args, **kwargs)

    day._assign = assign  # type: ignore[method-assign]
    # The world's interval calls these by their names in its module.
    for name, key in [
        ("step_traffic", "traffic"),
        ("step_energy", "energy"),
        ("true_state", "true_state"),
        ("step_monitoring", "monitoring"),
    ]:
        setattr(world_module, name, timed(key, getattr(world_module, name)))
    world_module.World.advance = timed(  # type: ignore[method-assign]
        "advance", world_module.World.advance
    )
    CityEnv.step = timed("step", CityEnv.step)  # type: ignore[method-assign]
    CityEnv.reset = timed("reset", CityEnv.reset)  # type: ignore[method-assign]
    CityEnv.allocation = timed("allocation", CityEnv.allocation)  # type: ignore[method-assign]
    CityEnv.costs = timed("costs", CityEnv.costs)  # type: ignore[method-assign]
    CityEnv._observation = timed(  # type: ignore[method-assign]
        "observation", CityEnv._observation
    )


def make_env(name: str) -> CityEnv:
    """The scenario's env, its day cut to `SHORT_DAYS` where set."""
    scenario = load_scenario(name)
    if name in SHORT_DAYS:
        time_cfg = scenario.time.model_copy(update={"num_steps": SHORT_DAYS[name]})
        scenario = scenario.model_copy(update={"time": time_cfg})
    return CityEnv(scenario)


def play(env: CityEnv, seed: int) -> int:
    """One episode of the uniform policy; returns its steps."""
    policy = make_baseline("uniform", env)
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    steps, done = 0, False
    while not done:
        obs, _, terminated, truncated, _ = env.step(policy.act(obs))
        steps, done = steps + 1, terminated or truncated
    return steps


def measure(name: str, episodes: int) -> list[dict[str, Any]]:
    """Timers of each episode of ``name``: first (cold cache), then the later ones pooled."""
    env = make_env(name)
    phases = []
    for label, seeds in [("first", [0]), ("later", list(range(1, episodes)))]:
        if not seeds:
            continue
        SECONDS.clear()
        CALLS.clear()
        start = time.perf_counter()
        steps = sum(play(env, seed) for seed in seeds)
        wall = time.perf_counter() - start
        phase: dict[str, Any] = dict(SECONDS)
        advance = phase.get("advance", 0.0)
        phase["simpy"] = advance - sum(
            phase.get(k, 0.0) for k in ("traffic", "energy", "true_state", "monitoring")
        )
        phase["step_other"] = phase.get("step", 0.0) - sum(
            phase.get(k, 0.0) for k in ("allocation", "advance", "costs", "observation")
        )
        phase.update(
            label=label,
            wall=wall,
            steps=steps,
            episodes=len(seeds),
            nodes=env.city.num_nodes,
            solves=CALLS.get("assign_baseline", 0) + CALLS.get("assign_cuts", 0),
        )
        phases.append(phase)
    return phases


def report(name: str, phases: list[dict[str, Any]]) -> float:
    """Print one scenario's rates and breakdown; returns the later episodes' node-steps/s."""
    nodes = phases[0]["nodes"]
    print(f"\n{name}: {nodes} nodes, uniform policy")
    rate = 0.0
    for p in phases:
        step_s = p["step"] / p["steps"]
        rate = nodes / step_s
        print(
            f"  {p['label']:>5} {p['episodes']} episode(s), {p['steps']} steps: "
            f"{1 / step_s:8.1f} steps/s {rate:10,.0f} node-steps/s "
            f"({1e3 * step_s:.2f} ms/step; reset {1e3 * p['reset'] / p['episodes']:.0f} "
            f"ms/episode; {p['solves']} assignments solved)"
        )
    print(f"  {'ms/step (% of step)':32}" + "".join(f"{p['label']:>18}" for p in phases))
    for label, key, _ in ROWS:
        cells = []
        for p in phases:
            ms = 1e3 * p.get(key, 0.0) / p["steps"]
            cells.append(f"{ms:10.3f} ({100 * p.get(key, 0.0) / p['step']:4.1f}%)")
        print(f"  {label:32}" + "".join(f"{c:>18}" for c in cells))
    return rate


def profile(name: str, episodes: int, top: int) -> None:
    """cProfile of the steps of the later episodes (after one unprofiled cold episode)."""
    env = make_env(name)
    play(env, 0)
    profiler = cProfile.Profile()
    profiler.enable()
    steps = sum(play(env, seed) for seed in range(1, max(episodes, 2)))
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(top)
        print(f"\n{name}: {steps} warm steps, top {top} by {order}")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def main() -> None:
    """Measure the scenarios, or profile one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="tiny,downtown,metro")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--profile", metavar="SCENARIO", default=None)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*blank value")
    if args.profile:
        profile(args.profile, args.episodes, args.top)
        return
    instrument()
    rates = {}
    for name in args.scenarios.split(","):
        rates[name] = report(name, measure(name, args.episodes))
        if name in SHORT_DAYS:
            print(f"  (episodes cut to the first {SHORT_DAYS[name]} steps of the day)")
    if "downtown" in rates:
        ratio = rates["downtown"] / TARGET_NODE_STEPS_S
        print(
            f"\ndowntown, later episodes: {rates['downtown']:,.0f} node-steps/s = "
            f"{ratio:.3f} x the target of {TARGET_NODE_STEPS_S:,.0f} node-steps/s "
            f"({'meets it' if ratio >= 1 else f'{1 / ratio:.1f}x short'}; the target is "
            f"{1e3 * 225 / TARGET_NODE_STEPS_S:.2f} ms per 225-node step)"
        )


if __name__ == "__main__":
    main()
