"""The report's figures (matplotlib): KPIs over the day, allocation heatmap, training.

Each function returns a `Figure`; text from scenario files passes through `mpl_text`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from agents.static_map import mpl_text
from simcity.daylog import DayLog

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
    ax.xaxis.set_major_formatter(FuncFormatter(lambda h, _: f"{int(h) % 24:02d}:00"))
    ax.grid(alpha=0.3)


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
    twin = axes[2].twinx()
    twin.step(hours, gco2 * per_h / 1000.0, where="post", color="C1", ls="--")
    twin.set_ylabel("compute kgCO2/h", color="C1")
    axes[2].set_title("Compute bill", loc="left", fontsize=10)
    # Grid carbon intensity against the capacity used.
    _, intensity, _, _ = _per_hour(steps, "datacentre_g_per_kwh", dt_min)
    _, units, _, _ = _per_hour(steps, "units_used", dt_min)
    axes[3].step(hours, intensity, where="post", color="#6b7280")
    axes[3].set_ylabel("grid gCO2/kWh", color="#6b7280")
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
