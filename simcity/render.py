"""`render_city`: the city at one step as an RGB image, for ``render_mode="rgb_array"``.

N nodes, L links. Roads are coloured by volume over capacity (green, free, to red at
`VC_MAX` and over; congested roads drawn on top), nodes sized and shaded by the monitoring
units they hold this step (white and small: none). North is up, in an equirectangular
projection true to scale at the city's latitude.

Drawn on matplotlib's Agg canvas without pyplot, so no global figure state: safe in
worker processes and threads. matplotlib is imported inside `render_city`, so importing
`simcity` never pays for it. `agents.viz.static_map` draws the richer map of a recorded
day (incidents, risk, a legend); this one needs nothing but the env's current step.
"""

from __future__ import annotations

import math

import numpy as np

WIDTH_PX = 640
HEIGHT_PX = 480
DPI = 100
VC_MAX = 1.5
"""Volume over capacity at the red end of the road colours."""


def render_city(
    lon: np.ndarray,
    lat: np.ndarray,
    link_tail: np.ndarray,
    link_head: np.ndarray,
    v_over_c: np.ndarray,
    units: np.ndarray,
    budget_units: float,
    *,
    title: str = "",
) -> np.ndarray:
    """The city as an (HEIGHT_PX, WIDTH_PX, 3) uint8 image.

    ``lon``, ``lat`` and ``units`` are (N,); ``link_tail``, ``link_head`` (node indices)
    and ``v_over_c`` are (L,). A node's dot grows with its share of ``budget_units``.

    >>> image = render_city(np.array([0.0, 0.01]), np.array([0.0, 0.0]), np.array([0]),
    ...                     np.array([1]), np.array([0.8]), np.array([1.0, 0.0]), 2.0)
    >>> image.shape, image.dtype
    ((480, 640, 3), dtype('uint8'))
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)  # (N,)
    tail, head = np.asarray(link_tail, dtype=int), np.asarray(link_head, dtype=int)  # (L,)
    vc = np.nan_to_num(np.asarray(v_over_c, dtype=float), nan=0.0, posinf=VC_MAX)  # (L,)
    share = np.asarray(units, dtype=float) / max(float(budget_units), 1e-9)  # (N,)

    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.02, 0.02, 0.96, 0.90))
    axes.set_axis_off()
    mean_lat = float(lat.mean()) if lat.size else 0.0
    axes.set_aspect(1.0 / max(math.cos(math.radians(mean_lat)), 1e-6), adjustable="datalim")
    order = np.argsort(vc, kind="stable")  # congested roads on top
    segments = np.stack(
        [np.column_stack([lon[tail], lat[tail]]), np.column_stack([lon[head], lat[head]])],
        axis=1,
    )  # (L, 2, 2)
    roads = LineCollection(
        list(segments[order]), cmap="RdYlGn_r", norm=Normalize(0.0, VC_MAX), linewidths=1.2
    )
    roads.set_array(np.clip(vc[order], 0.0, VC_MAX))
    axes.add_collection(roads)
    axes.scatter(
        lon,
        lat,
        s=4.0 + 400.0 * share,
        c=share,
        cmap="Blues",
        vmin=0.0,
        vmax=max(float(share.max(initial=0.0)), 1e-9),
        edgecolors="0.3",
        linewidths=0.3,
        zorder=3,
    )
    axes.autoscale_view()
    axes.margins(0.04)
    legend = f"roads: v/c 0 (green) to {VC_MAX:g}+ (red); dots: monitoring units"
    figure.text(0.5, 0.975, title, ha="center", va="top", fontsize=10)
    figure.text(0.5, 0.935, legend, ha="center", va="top", fontsize=7, color="0.35")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
