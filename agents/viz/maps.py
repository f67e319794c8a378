"""Interactive map of a run's day: one self-contained HTML file (pydeck, JS embedded).

Roads are coloured by congestion (v/c), nodes sized by the monitoring they got and
coloured by incident risk, incidents ringed green (detected) or red (missed). A slider
steps through the day's frames (`agents.viz.mapframes`): the whole day, then every hour; the
tooltips give each node's, road's and incident's figures in the frame shown.

Nothing is fetched over the network unless a basemap is asked for: pydeck's JavaScript
is inlined and its CDN tags are dropped. Text from scenario files (node names, titles)
is only ever HTML-escaped or set as text: the page JSON escapes ``<``, ``>`` and ``&``,
and the tooltips are text, never HTML.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.viz.map_page import PAGE_SCRIPT, PANEL_CSS, PANEL_PX, panel
from agents.viz.mapframes import (
    DETECTED_RGB,
    MISSED_RGB,
    RADIUS_MAX_PX,
    RADIUS_MIN_PX,
    RING_COUNT,
    RING_MIN_PX,
    RING_PX,
    RISK_STOPS,
    VC_SCALE,
    VC_STOPS,
    Frames,
    color_lut,
    incident_positions,
    lut_colors,
    map_frames,
    node_radius_px,
    ring_radius_px,
    road_paths,
)
from simcity.records.daylog import DayLog
from simcity.records.results import clock

BACKGROUND = "#0b1020"
BASEMAPS = {"carto-light": "light", "carto-dark": "dark"}
WORLD_PX = 512.0  # deck.gl's Web Mercator world size at zoom 0
QUANTUM = 1e-3  # the page's units and risk, as a share of their scales: finer than the eye
VC_QUANTUM = 0.01
MARGIN_PX = 30


@dataclass(frozen=True)
class View:
    """A deck.gl MapView camera (no pitch or bearing)."""

    longitude: float
    latitude: float
    zoom: float


def _world(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Web Mercator world pixels at zoom 0, y down (deck.gl's convention)."""
    phi = np.radians(np.clip(lat, -85.05, 85.05))
    x = WORLD_PX * (np.asarray(lon) + 180.0) / 360.0
    y = WORLD_PX * (math.pi - np.log(np.tan(math.pi / 4 + phi / 2))) / (2 * math.pi)
    return x, y


def project(
    lon: np.ndarray, lat: np.ndarray, view: View, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Screen pixels (x right, y down) of points in a ``width`` x ``height`` map."""
    x, y = _world(lon, lat)
    cx, cy = _world(np.array(view.longitude), np.array(view.latitude))
    scale = 2.0**view.zoom
    return (x - cx) * scale + width / 2, (y - cy) * scale + height / 2


def fit_view(
    lon: np.ndarray, lat: np.ndarray, width: int, height: int, left_px: int = PANEL_PX
) -> View:
    """The camera that shows every point, clear of a ``left_px`` panel and a margin."""
    margin = MARGIN_PX
    x, y = _world(lon, lat)
    free_w, free_h = max(width - left_px - 2 * margin, 50), max(height - 2 * margin, 50)
    span_x, span_y = max(float(np.ptp(x)), 1e-9), max(float(np.ptp(y)), 1e-9)
    zoom = min(math.log2(free_w / span_x), math.log2(free_h / span_y), 20.0)
    scale = 2.0**zoom
    # Put the middle of the points at the middle of the free area, not of the map.
    mid_x = (x.min() + x.max()) / 2 - (left_px + margin + free_w / 2 - width / 2) / scale
    mid_y = (y.min() + y.max()) / 2
    lon_c = mid_x / WORLD_PX * 360.0 - 180.0
    lat_c = math.degrees(2 * math.atan(math.exp(math.pi - 2 * math.pi * mid_y / WORLD_PX)))
    lat_c -= 90.0
    return View(float(lon_c), float(lat_c), float(zoom))


def _quantised(values: np.ndarray, step: float) -> list[int]:
    """Values as whole multiples of ``step``: the page's frames, compact in JSON."""
    return np.round(np.asarray(values, dtype=float) / step).astype(int).ravel().tolist()


def _json_for_html(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` left raw.

    >>> _json_for_html({"name": "</script><b>&"})
    '{"name":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _node_tips(day: DayLog) -> list[str]:
    """Each node's figures over the day, as plain text (the map adds the frame's)."""
    n = day.num_nodes
    detected = np.bincount(day.incidents["node"][day.detected], minlength=n)
    missed = np.bincount(day.incidents["node"][~day.detected], minlength=n)
    damage = np.bincount(day.incidents["node"], weights=day.incidents["damage"], minlength=n)
    congestion = day.congestion.astype(float).mean(axis=0)
    load = day.load_ratio.astype(float).max(axis=0)
    error = day.estimation_error.astype(float).mean(axis=0)
    return [
        f"{day.node_name[i]} (node {day.node_id[i]})\n"
        f"people {day.population[i]:,.0f}, jobs {day.jobs[i]:,.0f}\n"
        f"day: congestion {congestion[i]:.2f} v/c, peak load {load[i]:.0%} of feeder, "
        f"estimation error {error[i]:.3g}\n"
        f"incidents: {detected[i]} detected, {missed[i]} missed, damage ${damage[i]:,.0f}"
        for i in range(n)
    ]


def _incident_tips(day: DayLog) -> list[str]:
    inc = day.incidents
    tips = []
    for k in range(len(inc["kind"])):
        at = clock(float(day.hour_at(inc["start_min"][k])))
        where = day.node_name[int(inc["node"][k])]
        found = (
            f"detected after {inc['detected_min'][k] - inc['start_min'][k]:.0f} min"
            if inc["status"][k] == "detected"
            else "missed"
        )
        tips.append(
            f"{inc['kind'][k].replace('_', ' ')} at {where}, {at}\n"
            f"{found}; damage ${inc['damage'][k]:,.0f}, severity {inc['severity'][k]:.2f}"
        )
    return tips


def segment_lines(
    pdk: Any, segments: list[dict[str, Any]], layer_id: str, *, color: Any = "c", width: Any = "w"
) -> Any:
    """A lines layer from ``s`` to ``t`` of each segment, ``width`` pixels in ``color``.

    ``color`` and ``width`` name a field of each segment, or are one value for all; only
    per-segment layers (named fields) are pickable, so fixed backdrops show no tooltips.
    """
    return pdk.Layer(
        "LineLayer",
        segments,
        id=layer_id,
        get_source_position="s",
        get_target_position="t",
        get_color=color,
        get_width=width,
        width_units="'pixels'",
        pickable=isinstance(color, str),
    )


def road_paths_layer(pdk: Any, roads: list[dict[str, Any]]) -> Any:
    """The roads layer along each road's ``path`` of points (cities with real streets)."""
    return pdk.Layer(
        "PathLayer",
        roads,
        id="roads",
        get_path="path",
        get_color="c",
        get_width="w",
        width_units="'pixels'",
        joint_rounded=True,
        cap_rounded=True,
        pickable=True,
    )


def node_circles(pdk: Any, nodes: list[dict[str, Any]]) -> Any:
    """The nodes layer: circles at ``p`` of ``r`` pixels in colour ``c``, outlined white."""
    return pdk.Layer(
        "ScatterplotLayer",
        nodes,
        id="nodes",
        get_position="p",
        get_radius="r",
        radius_units="'pixels'",
        get_fill_color="c",
        stroked=True,
        get_line_color=[255, 255, 255, 110],
        line_width_min_pixels=1,
        pickable=True,
    )


def _layers(day: DayLog, frames: Frames, start: int) -> list[Any]:
    """The pydeck layers as they look in frame ``start`` (the incidents layer has all)."""
    import pydeck as pdk

    lon, lat = np.round(day.lon, 6).tolist(), np.round(day.lat, 6).tolist()
    tail, head = frames.road_tail.tolist(), frames.road_head.tolist()
    width = 1.0 + 2.0 * frames.road_capacity_veh_h / frames.road_capacity_veh_h.max()
    road_rgb = lut_colors(frames.road_vc[start], VC_SCALE, color_lut(VC_STOPS)).tolist()
    roads = [
        {"j": j, "s": [lon[a], lat[a]], "t": [lon[b], lat[b]], "w": round(w, 1), "c": c}
        for j, (a, b, w, c) in enumerate(zip(tail, head, width.tolist(), road_rgb, strict=True))
    ]
    paths = road_paths(day)
    if paths is not None:  # real streets: each road along its points, not a straight line
        for road, points in zip(roads, paths, strict=True):
            del road["s"], road["t"]
            road["path"] = np.round(points, 6).tolist()
    radius = node_radius_px(frames.units[start], frames.units_scale).round(1).tolist()
    risk_lut = color_lut(RISK_STOPS)
    node_rgb = lut_colors(frames.risk_per_h[start], frames.risk_scale, risk_lut).tolist()
    tips = _node_tips(day)
    nodes = [
        {"i": i, "p": [lon[i], lat[i]], "r": radius[i], "c": node_rgb[i], "tip": tips[i]}
        for i in range(day.num_nodes)
    ]
    inc_lon, inc_lat = incident_positions(day)
    inc_start = day.incidents["start_min"]
    color = np.where(day.detected[:, None], DETECTED_RGB, MISSED_RGB).tolist()
    incidents = [
        {"p": [x, y], "c": c, "s": s, "e": e, "tip": tip}
        for x, y, c, s, e, tip in zip(
            np.round(inc_lon, 6).tolist(),
            np.round(inc_lat, 6).tolist(),
            color,
            day.incidents["start_min"].round(1).tolist(),
            frames.incident_end_min.round(1).tolist(),
            _incident_tips(day),
            strict=True,
        )
    ]
    pixels = "'pixels'"  # pydeck passes quoted strings on as text, bare ones as code
    layers = [
        segment_lines(pdk, roads, "roads") if paths is None else road_paths_layer(pdk, roads),
        node_circles(pdk, nodes),
        pdk.Layer(
            "ScatterplotLayer",
            incidents,
            id="incidents",
            get_position="p",
            get_radius=float(ring_radius_px(int(frames.active(start, inc_start).sum()))),
            radius_units=pixels,
            filled=False,
            stroked=True,
            get_line_color="c",
            line_width_min_pixels=2,
            pickable=True,
        ),
    ]
    return layers


def _page_data(day: DayLog, frames: Frames, start: int) -> dict[str, Any]:
    """What the page script needs to restyle the layers for every frame."""
    return {
        "start": start,
        "labels": frames.label,
        "t0": frames.t0_min.tolist(),
        "t1": frames.t1_min.tolist(),
        # Frames in thousandths of their scales (v/c in hundredths): see `QUANTUM`.
        "units": [_quantised(row, frames.units_scale * QUANTUM) for row in frames.units],
        "risk": [_quantised(row, frames.risk_scale * QUANTUM) for row in frames.risk_per_h],
        "vc": [_quantised(row, VC_QUANTUM) for row in frames.road_vc],
        "quantum": QUANTUM,
        "vcQuantum": VC_QUANTUM,
        # Incidents' start, end (minutes) and detection, for the legend's counts by frame.
        "incS": day.incidents["start_min"].round(1).tolist(),
        "incE": frames.incident_end_min.round(1).tolist(),
        "incD": day.detected.astype(int).tolist(),
        "names": day.node_name,
        "roadTail": frames.road_tail.tolist(),
        "roadHead": frames.road_head.tolist(),
        "capacity": frames.road_capacity_veh_h.round().tolist(),
        "vcLut": color_lut(VC_STOPS).tolist(),
        "vcScale": VC_SCALE,
        "riskLut": color_lut(RISK_STOPS).tolist(),
        "riskScale": frames.risk_scale,
        "unitsScale": frames.units_scale,
        "bounds": [day.lon.min(), day.lat.min(), day.lon.max(), day.lat.max()],
        "panelPx": PANEL_PX,
        "marginPx": MARGIN_PX,
        "ringPx": RING_PX,
        "ringMinPx": RING_MIN_PX,
        "ringCount": RING_COUNT,
        "rMin": RADIUS_MIN_PX,
        "rMax": RADIUS_MAX_PX,
    }


_NETWORK_TAG = re.compile(
    r"<script\b[^>]*\bsrc=[\"']?(?:https?:)?//[^>]*>\s*</script>"
    r"|<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>",
    re.IGNORECASE,
)


def deck_page(
    layers: list[Any],
    lon: np.ndarray,
    lat: np.ndarray,
    title: str,
    *,
    view_size: tuple[int, int] = (1200, 800),
    basemap: str | None = None,
) -> str:
    """A self-contained pydeck page of ``layers``, its camera fitted to ``lon``/``lat``.

    The deck's JSON is compacted and escaped for HTML (`_json_for_html`), plain-text
    tooltips come from each datum's ``tip``, the page ``title`` is escaped, and with no
    basemap every tag that would fetch from the network is removed.
    """
    import pydeck as pdk

    view = fit_view(lon, lat, *view_size)
    deck = pdk.Deck(
        layers=layers,
        initial_view_state=pdk.ViewState(
            longitude=view.longitude, latitude=view.latitude, zoom=view.zoom
        ),
        map_provider="carto" if basemap else None,
        map_style=BASEMAPS[basemap] if basemap else None,
        tooltip={"text": "{tip}"},
    )
    raw = deck.to_json()
    page = deck.to_html(
        as_string=True, offline=True, notebook_display=False, css_background_color=BACKGROUND
    )
    if page.count(raw) != 1:
        raise RuntimeError("pydeck's page does not hold its JSON verbatim")
    page = page.replace(raw, _json_for_html(json.loads(raw)))  # compact, and safe
    if basemap is None:
        page = _NETWORK_TAG.sub("", page)
    return page.replace("<title>pydeck</title>", f"<title>{html.escape(title)}</title>")


def map_html(
    day: DayLog,
    *,
    subtitle: str = "",
    start_hour: float | None = None,
    basemap: str | None = None,
    view_size: tuple[int, int] = (1200, 800),
) -> str:
    """The interactive map page of a run's day.

    Args:
        subtitle: a line under the title (policy, date, seed), shown escaped.
        start_hour: local hour the page opens on; None opens on the whole day.
        basemap: None for none (nothing fetched), or a `BASEMAPS` name: tiles from
            CARTO's servers, so the page then needs the network.
        view_size: the window size the initial camera is fitted to.
    """
    if basemap is not None and basemap not in BASEMAPS:
        raise ValueError(f"unknown basemap {basemap!r}; expected one of {sorted(BASEMAPS)}")
    frames = map_frames(day)
    start = 0 if start_hour is None else frames.frame_at(start_hour)
    title = day.title or day.scenario
    page = deck_page(
        _layers(day, frames, start),
        day.lon,
        day.lat,
        f"{title}: map",
        view_size=view_size,
        basemap=basemap,
    )
    body_end = page.rindex("</body>")
    legend = panel(day, frames, start, title, subtitle)
    page = page[:body_end] + PANEL_CSS + legend + page[body_end:]
    data = _json_for_html(_page_data(day, frames, start))
    script = f'<script type="application/json" id="simcity-data">{data}</script>{PAGE_SCRIPT}'
    html_end = page.rindex("</html>")
    return page[:html_end] + script + "\n" + page[html_end:]
