"""Static map of a run's day for papers and reports (matplotlib), one frame at a time.

The same encodings and scales as the interactive map (`agents.viz.mapframes`): roads by v/c,
dot area by monitoring units, dot colour by incident risk, incidents ringed (detected)
or crossed (missed); on white, in an equirectangular projection true to scale locally.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.viz.mapframes import (
    DAY_LABEL,
    DETECTED_RGB,
    MISSED_RGB,
    RISK_STOPS,
    VC_SCALE,
    VC_STOPS,
    color_lut,
    incident_positions,
    lut_colors,
    map_frames,
    node_radius_px,
    road_paths,
)
from simcity.records.daylog import DayLog

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def mpl_text(text: str) -> str:
    """Text shown literally by matplotlib (a ``$`` would otherwise start math mode)."""
    return text.replace("\\", "\\\\").replace("$", r"\$")


def static_map(
    day: DayLog, *, title: str = "", hour_local: float | None = None, size_in: float = 7.0
) -> Figure:
    """A figure of the day (or of the hour frame covering ``hour_local``)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import ListedColormap, Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    frames = map_frames(day)
    f = 0 if hour_local is None else frames.frame_at(hour_local)
    vc_lut, risk_lut = color_lut(VC_STOPS), color_lut(RISK_STOPS)
    fig = Figure(figsize=(size_in * 1.25, size_in), layout="constrained")
    ax = fig.add_subplot()
    ax.set_aspect(1.0 / math.cos(math.radians(float(np.mean(day.lat)))))
    ax.set_axis_off()
    # Roads, thicker where capacity is higher; congested ones drawn last (on top).
    order = np.argsort(frames.road_vc[f])
    tail, head = frames.road_tail[order], frames.road_head[order]
    paths = road_paths(day)
    segments: Any = np.stack(
        [np.stack([day.lon[tail], day.lat[tail]], 1), np.stack([day.lon[head], day.lat[head]], 1)],
        axis=1,
    )
    if paths is not None:  # real streets: each road along its points
        segments = [paths[r] for r in order]
    width = 0.4 + 1.2 * frames.road_capacity_veh_h[order] / frames.road_capacity_veh_h.max()
    colors = lut_colors(frames.road_vc[f][order], VC_SCALE, vc_lut) / 255.0
    ax.add_collection(LineCollection(list(segments), colors=colors, linewidths=width, zorder=1))
    # Nodes: area by units (the same radii as the HTML map, in points), colour by risk.
    points_per_px = 0.6
    radius = node_radius_px(frames.units[f], frames.units_scale) * points_per_px
    rank = np.argsort(frames.units[f])
    ax.scatter(
        day.lon[rank],
        day.lat[rank],
        s=(radius[rank] * 2) ** 2,
        c=lut_colors(frames.risk_per_h[f][rank], frames.risk_scale, risk_lut) / 255.0,
        edgecolors="#1f2937",
        linewidths=0.3,
        zorder=2,
    )
    # Incidents open in the frame.
    active = frames.active(f, day.incidents["start_min"])
    x, y = incident_positions(day)
    detected, missed = _hex(DETECTED_RGB), _hex(MISSED_RGB)
    caught, lost = active & day.detected, active & ~day.detected
    ax.scatter(
        x[caught],
        y[caught],
        s=80,
        facecolors="none",
        edgecolors=detected,
        linewidths=1.5,
        zorder=3,
    )
    ax.scatter(
        x[lost],
        y[lost],
        s=60,
        marker="X",
        facecolors=missed,
        edgecolors="#1f2937",
        linewidths=0.5,
        zorder=3,
    )
    ax.autoscale_view()
    ax.margins(0.03)
    when = DAY_LABEL if f == 0 else frames.label[f]
    ax.set_title(mpl_text(f"{title or day.title or day.scenario}: {when}"), fontsize=11)
    key_units = np.array([1.0, 0.25]) * frames.units_scale
    diameter = 2 * points_per_px * node_radius_px(key_units, frames.units_scale)

    def key(label: str, **style: Any) -> Line2D:
        style = {"markeredgecolor": "#1f2937", **style}
        return Line2D([], [], linestyle="none", label=label, **style)

    handles = [
        Line2D([], [], color="#64748b", label="road (width: capacity)"),
        *(
            key(f"{units:.3g} units", marker="o", markersize=d, color="#94a3b8")
            for units, d in zip(key_units, diameter, strict=True)
        ),
        key(
            "incident detected",
            marker="o",
            markersize=9,
            markerfacecolor="none",
            markeredgecolor=_hex(DETECTED_RGB),
        ),
        key("incident missed", marker="X", markersize=8, color=_hex(MISSED_RGB)),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=5, fontsize=8, frameon=False)
    for lut, scale, label in (
        (risk_lut, frames.risk_scale, "node incident risk, incidents/h"),
        (vc_lut, VC_SCALE, "road v/c" + (" (worst hour)" if f == 0 else "")),
    ):
        mappable = ScalarMappable(Normalize(0.0, scale), ListedColormap(lut / 255.0))
        fig.colorbar(mappable, ax=ax, label=label, shrink=0.6, pad=0.01, extend="max")
    return fig


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """A figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
