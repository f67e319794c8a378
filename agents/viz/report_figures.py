"""The report's figures (matplotlib): KPIs over the day, allocation heatmap, training,
capacity by hour of day, and a Pareto front.

Each function returns a `Figure`; text from scenario files passes through `mpl_text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.viz.numbers import number
from agents.viz.static_map import mpl_text
from simcity.records.daylog import DayLog
from simcity.records.results import clock

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from agents.viz.report_sections import HourlyCapacity

STEP_COLUMNS = (
    "episode",
    "time_min",
    "hour_local",
    "damage",
    "incidents_new",
    "incidents_detected",
    "incidents_missed",
    "compute_kwh",
    "compute_gco2",
    "units_used",
    "datacentre_g_per_kwh",
)
# progress.csv columns worth a curve, in panel order (others are ignored).
TRAINING_CURVES = (
    ("mean_episode_reward", "mean episode reward"),
    ("policy_loss", "policy loss"),
    ("value_loss", "value loss"),
    ("entropy", "entropy"),
    ("approx_kl", "approx. KL"),
    ("clip_fraction", "clip fraction"),
)
HEATMAP_ROWS = 40


def _hours(steps: Mapping[str, np.ndarray], dt_min: float) -> np.ndarray:
    """Hours on a clock that does not wrap at midnight, for the x axes."""
    first = steps["hour_local"][0] - dt_min / 120.0
    return first + steps["time_min"] / 60.0


def _per_hour(
    steps: Mapping[str, np.ndarray], key: str, dt_min: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(step start hours, mean over episodes, min, max) of a per-step column."""
    episode = steps["episode"].astype(int)
    values = np.stack([steps[key][episode == e] for e in np.unique(episode)])  # (E, T)
    hours = _hours({k: v[episode == episode[0]] for k, v in steps.items()}, dt_min)
    return hours, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def _clock_axis(ax: Axes) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    ax.xaxis.set_major_locator(MultipleLocator(3))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda h, _: clock(h)))  # whole hours
    ax.grid(alpha=0.3)


FLAT_RELATIVE = 1e-9
"""A series whose spread is below this fraction of its size (at least 1) is a constant
drawn with float noise: `steady_axis` draws it flat."""


def steady_axis(ax: Axes, values: np.ndarray) -> bool:
    """Where ``values`` are one constant up to float noise, an axis of ±10% around it with
    one tick at the value, so noise of 1e-16 is not drawn as a curve. True if it did so."""
    from matplotlib.ticker import FixedLocator

    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    level = float(finite.mean())
    if float(np.ptp(finite)) > FLAT_RELATIVE * max(1.0, abs(level)):
        return False
    pad = 0.1 * abs(level) if level != 0.0 else 1.0
    ax.set_ylim(level - pad, level + pad)
    ax.yaxis.set_major_locator(FixedLocator([level]))
    ax.yaxis.set_major_formatter(lambda _y, _pos: f"{number(level)} (constant)")
    return True


def kpi_figure(steps: Mapping[str, np.ndarray], dt_min: float, budget_units: float) -> Figure:
    """Damage, incidents, compute energy and carbon, and carbon intensity vs capacity used.

    Per hour, the mean over the run's episodes (band: lowest to highest episode).
    """
    from matplotlib.figure import Figure

    per_h = 60.0 / dt_min
    fig = Figure(figsize=(9.5, 9.0), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)
    episodes = len(np.unique(steps["episode"]))
    band = "" if episodes == 1 else f" (mean of {episodes} days, band: min-max)"
    # Damage.
    hours, mean, low, high = _per_hour(steps, "damage", dt_min)
    axes[0].fill_between(hours, low * per_h, high * per_h, step="post", alpha=0.25, color="C3")
    axes[0].step(hours, mean * per_h, where="post", color="C3")
    axes[0].set_ylabel("damage, $/h")
    axes[0].set_title("Service" + band, loc="left", fontsize=10)
    # Incidents: detected and missed as they close, new as they start.
    width = dt_min / 60.0
    _, detected, _, _ = _per_hour(steps, "incidents_detected", dt_min)
    _, missed, _, _ = _per_hour(steps, "incidents_missed", dt_min)
    _, new, _, _ = _per_hour(steps, "incidents_new", dt_min)
    axes[1].bar(hours, detected, width, align="edge", color="#22c55e", label="detected")
    axes[1].bar(
        hours, missed, width, bottom=detected, align="edge", color="#ef4444", label="missed"
    )
    axes[1].step(hours, new, where="post", color="#111827", lw=1, label="new")
    axes[1].set_ylabel("incidents per step")
    axes[1].legend(fontsize=8, ncols=3, loc="upper left")
    # Compute energy and carbon.
    _, kwh, _, _ = _per_hour(steps, "compute_kwh", dt_min)
    _, gco2, _, _ = _per_hour(steps, "compute_gco2", dt_min)
    axes[2].step(hours, kwh * per_h, where="post", color="C0")
    axes[2].set_ylabel("compute kWh/h", color="C0")
    steady_axis(axes[2], kwh * per_h)
    twin = axes[2].twinx()
    twin.step(hours, gco2 * per_h / 1000.0, where="post", color="C1", ls="--")
    twin.set_ylabel("compute kgCO2/h", color="C1")
    steady_axis(twin, gco2 * per_h / 1000.0)
    axes[2].set_title("Compute bill", loc="left", fontsize=10)
    # Grid carbon intensity against the capacity used.
    _, intensity, _, _ = _per_hour(steps, "datacentre_g_per_kwh", dt_min)
    _, units, _, _ = _per_hour(steps, "units_used", dt_min)
    axes[3].step(hours, intensity, where="post", color="#6b7280")
    axes[3].set_ylabel("grid gCO2/kWh", color="#6b7280")
    steady_axis(axes[3], intensity)
    used = axes[3].twinx()
    used.step(hours, 100.0 * units / max(budget_units, 1e-9), where="post", color="C2")
    used.set_ylabel("capacity used, %", color="C2")
    used.set_ylim(0, 105)
    axes[3].set_title(
        "Data centre grid intensity vs monitoring capacity used", loc="left", fontsize=10
    )
    axes[3].set_xlabel("local time")
    for ax in axes:
        _clock_axis(ax)
    return fig


def heatmap_figure(day: DayLog, rows: int = HEATMAP_ROWS) -> Figure:
    """Units per node and step, for the nodes that got the most (all nodes when few)."""
    from matplotlib.figure import Figure

    total = day.allocation.astype(float).sum(axis=0)  # (N,)
    order = np.argsort(-total, kind="stable")[: min(rows, day.num_nodes)]
    grid = day.allocation[:, order].T.astype(float)  # (K, T)
    hours = _hours({"hour_local": day.hour_local, "time_min": day.time_min}, day.dt_min)
    fig = Figure(figsize=(9.5, 2.0 + 0.16 * len(order)), layout="constrained")
    ax = fig.subplots()
    end = hours[-1] + day.dt_min / 60.0
    image = ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        cmap="magma",
        vmin=0.0,
        vmax=max(float(np.quantile(grid, 0.99)), 1e-9),  # one busy step must not darken all
        extent=(hours[0], end, len(order) - 0.5, -0.5),
    )
    names = [mpl_text(_short(day.node_name[i])) for i in order]
    ax.set_yticks(np.arange(len(order)), names, fontsize=7)
    share = total[order].sum() / max(total.sum(), 1e-12)
    scope = (
        f"all {day.num_nodes} nodes"
        if len(order) == day.num_nodes
        else f"the {len(order)} of {day.num_nodes} nodes that got the most "
        f"({share:.0%} of all units)"
    )
    ax.set_title(f"Monitoring units per node and step: {scope}", loc="left", fontsize=10)
    ax.set_xlabel("local time")
    _clock_axis(ax)
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="units", pad=0.01, extend="max")
    return fig


def _short(name: str, limit: int = 28) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def training_figure(progress: Mapping[str, np.ndarray]) -> Figure | None:
    """Training curves from ``progress.csv`` columns; None when it has none of them."""
    from matplotlib.figure import Figure

    curves = [(k, label) for k, label in TRAINING_CURVES if k in progress]
    if not curves:
        return None
    x = progress.get("step")
    x_label = "env steps"
    if x is None:
        x, x_label = np.arange(1, len(next(iter(progress.values()))) + 1), "update"
    cols = 2 if len(curves) > 1 else 1
    rows = -(-len(curves) // cols)
    fig = Figure(figsize=(9.5, 2.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True)).ravel()
    for ax, (key, label) in zip(axes, curves, strict=False):
        values = progress[key]
        ok = np.isfinite(values)  # rollouts that ended no episode log NaN rewards
        ax.plot(x[ok], values[ok], marker="." if ok.sum() < 30 else None, lw=1.2)
        ax.set_title(label, loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(curves) :]:
        ax.set_visible(False)
    for ax in axes[-cols:]:
        ax.set_xlabel(x_label)
    return fig


def capacity_figure(runs: Sequence[HourlyCapacity], budget_units: float) -> Figure:
    """Mean units used by local hour, one line per run, and the first run's grid intensity.

    The first run's dirtiest and cleanest hours are shaded.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    ax = fig.subplots()
    hours = np.arange(len(runs[0].units_used)) + 0.5  # the middle of each hour
    first = runs[0]
    for hour in first.dirty_hours:
        ax.axvspan(hour, hour + 1, color="#fca5a5", alpha=0.25, lw=0)
    for hour in first.clean_hours:
        ax.axvspan(hour, hour + 1, color="#86efac", alpha=0.25, lw=0)
    for k, run in enumerate(runs):
        ax.plot(
            hours,
            run.units_used,
            marker="o",
            ms=3,
            lw=2.0 if k == 0 else 1.4,
            color=f"C{k}",
            label=mpl_text(run.label),
        )
    ax.axhline(budget_units, color="#111827", lw=0.8, ls=":", label="budget")
    ax.set_ylim(0, max(budget_units, float(np.nanmax([r.units_used for r in runs]))) * 1.08)
    ax.set_ylabel("monitoring units used")
    ax.set_xlabel("local hour of day")
    ax.set_xlim(0, 24)
    ax.set_xticks(np.arange(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.step(
        np.arange(25),
        np.append(first.intensity_g_per_kwh, first.intensity_g_per_kwh[-1]),
        where="post",
        color="#6b7280",
        ls="--",
        lw=1.2,
        label=mpl_text(f"grid gCO2/kWh, {first.label}"),
    )
    twin.set_ylabel("data centre grid gCO2/kWh", color="#6b7280")
    twin.set_ylim(bottom=0)
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    ax.legend(lines + more, labels + more_labels, fontsize=8, loc="lower left")
    episodes = " + ".join(str(r.episodes) for r in runs)
    ax.set_title(
        f"Mean units used by hour (days: {episodes}); shaded: the first run's "
        f"{len(first.dirty_hours)} dirtiest (red) and cleanest (green) hours",
        loc="left",
        fontsize=10,
    )
    return fig


def pareto_figure(points: Sequence[Mapping[str, Any]]) -> Figure:
    """Service cost against compute kgCO2: colour by budget, marker by kind, front joined."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    ax = fig.subplots()
    shown = [
        p for p in points if np.isfinite(p["service_cost"]) and np.isfinite(p["compute_kgco2"])
    ]
    budgets = sorted({p["budget_units"] for p in shown})
    kinds = list(dict.fromkeys(p["kind"] for p in shown))
    markers = "oDs^vP*Xh"
    handles = []
    for b, budget in enumerate(budgets):
        for k, kind in enumerate(kinds):
            mine = [p for p in shown if p["budget_units"] == budget and p["kind"] == kind]
            if mine:
                ax.scatter(
                    [p["service_cost"] for p in mine],
                    [p["compute_kgco2"] for p in mine],
                    color=f"C{b % 10}",
                    marker=markers[k % len(markers)],
                    s=40,
                    alpha=0.8,
                )
        handles.append(
            Line2D([], [], color=f"C{b % 10}", lw=0, marker="o", label=f"budget {budget:g}")
        )
    for k, kind in enumerate(kinds):
        handles.append(
            Line2D(
                [],
                [],
                color="#6b7280",
                lw=0,
                marker=markers[k % len(markers)],
                label=mpl_text(kind),
            )
        )
    front = sorted(
        (p for p in shown if p["pareto"]), key=lambda p: (p["service_cost"], p["compute_kgco2"])
    )
    x = [p["service_cost"] for p in front]
    y = [p["compute_kgco2"] for p in front]
    ax.plot(x, y, color="black", lw=0.8, ls=":")
    ax.scatter(x, y, s=150, facecolors="none", edgecolors="black", linewidths=1.4)
    handles.append(
        Line2D(
            [],
            [],
            color="black",
            lw=0.8,
            ls=":",
            marker="o",
            mfc="none",
            ms=11,
            label=f"non-dominated ({len(front)})",
        )
    )
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel("service cost per day (damage + estimation error), $")
    ax.set_ylabel("compute kgCO2 per day")
    left_out = (
        f" ({len(points) - len(shown)} without results left out)"
        if len(shown) < len(points)
        else ""
    )
    ax.set_title(
        f"{len(shown)} points{left_out}; the front is over service cost, kgCO2 and money",
        loc="left",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    return fig
