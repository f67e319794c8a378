"""The map of one explained decision: one self-contained HTML file (pydeck, JS embedded).

Roads are thin grey lines; nodes are dots sized and coloured by their share of the
budget at the decision; lines run from each explained node (`agents.green.explain`) to the
neighbours it attended to, their width and opacity growing with the attention weight of
the policy's last layer, averaged over its heads.

Built like `agents.viz.maps`: nothing is fetched over the network (pydeck's JavaScript
inlined, its CDN tags dropped), the page JSON escapes ``<``, ``>`` and ``&``, the panel
is HTML-escaped and the tooltips are text, never HTML.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from agents.green.explain import Explanation, NodeExplanation
from agents.viz.map_page import PANEL_CSS, gradient
from agents.viz.mapframes import Stops, color_lut, lut_colors, node_radius_px
from agents.viz.maps import deck_page, node_circles, segment_lines
from simcity.city.graph import NODE_NAME, City
from simcity.records.files import write_atomic

# Dot colour by share of the budget, from none (slate) to the largest share (amber).
SHARE_STOPS: Stops = ((0.0, (71, 85, 105)), (0.5, (56, 189, 248)), (1.0, (250, 204, 21)))
ROAD_RGBA = [148, 163, 184, 110]
ATTENTION_RGB = (244, 114, 182)
ATTENTION_MAX_PX = 10.0  # line width at weight 1


def last_layer_weight(link_by_layer_head: list[list[float]]) -> float:
    """The attention weight the map draws: the last layer's, averaged over its heads."""
    return float(np.mean(link_by_layer_head[-1]))


def attention_lines(explanation: Explanation, names: list[str]) -> list[dict[str, Any]]:
    """One line per (explained node, neighbour), as the attention table lists them."""
    lines = []
    for node in explanation.nodes:
        for link in node.attention:
            weight = last_layer_weight(link.by_layer_head)
            alpha = round(40 + 215 * min(max(weight, 0.0), 1.0))
            lines.append(
                {
                    "node": node.node,
                    "neighbour": link.neighbour,
                    "s": [round(node.lon, 6), round(node.lat, 6)],
                    "t": [round(link.lon, 6), round(link.lat, 6)],
                    "weight": weight,
                    "w": round(0.5 + ATTENTION_MAX_PX * weight, 2),
                    "c": [*ATTENTION_RGB, alpha],
                    "tip": f"{names[node.node]} attends to {names[link.neighbour]}\n"
                    f"weight {weight:.3f} (last layer, mean of heads; "
                    f"all layers and heads {link.weight:.3f})\n"
                    f"{link.distance_min:.2f} min away",
                }
            )
    return lines


def _node_tip(name: str, share: float, node: NodeExplanation | None) -> str:
    tip = f"{name}\n{share:.1%} of the budget"
    if node is not None:
        top = node.features[0] if node.features else None
        tip += f" ({node.units:.3g} units)"
        if top is not None:
            tip += f"\ntop feature: {top.feature} (IG {top.attribution:+.3g})"
    return tip


def _layers(explanation: Explanation, city: City, names: list[str]) -> list[Any]:
    import pydeck as pdk

    lon, lat = np.round(city.lon, 6).tolist(), np.round(city.lat, 6).tolist()
    # A road is both directions of a link pair (as `agents.viz.mapframes.roads`).
    n = city.num_nodes
    low = np.minimum(city.link_tail, city.link_head)
    high = np.maximum(city.link_tail, city.link_head)
    pairs = np.unique(low * n + high)
    roads = [
        {"s": [lon[a], lat[a]], "t": [lon[b], lat[b]]}
        for a, b in zip((pairs // n).tolist(), (pairs % n).tolist(), strict=True)
    ]
    share = np.asarray(explanation.shares, dtype=float)
    scale = max(float(share.max()), 1e-9)
    radius = node_radius_px(share, scale).round(1).tolist()
    rgb = lut_colors(share, scale, color_lut(SHARE_STOPS)).tolist()
    explained = {node.node: node for node in explanation.nodes}
    nodes = [
        {
            "i": i,
            "p": [lon[i], lat[i]],
            "r": radius[i],
            "c": rgb[i],
            "tip": _node_tip(names[i], float(share[i]), explained.get(i)),
        }
        for i in range(n)
    ]
    return [
        segment_lines(pdk, roads, "roads", color=ROAD_RGBA, width=1),
        segment_lines(pdk, attention_lines(explanation, names), "attention"),
        node_circles(pdk, nodes),
    ]


def _panel(explanation: Explanation, title: str, num_layers: int, num_heads: int) -> str:
    esc = html.escape
    top = len(explanation.nodes)
    return f"""<div id="simcity-panel">
<div class="simcity-title">{esc(title)}: decision at {esc(explanation.time_local)}</div>
<div class="simcity-sub">step {explanation.step}, seed {explanation.seed}</div>
<div class="simcity-key">Nodes: share of the budget (dot area and colour)</div>
<div class="simcity-bar" style="{gradient(SHARE_STOPS)}"></div>
<div class="simcity-ticks"><span>0</span><span>{max(explanation.shares):.1%}</span></div>
<div class="simcity-key">Lines: attention of the {top} nodes given the most units to their
 neighbours; width and opacity by the weight of the last layer ({num_layers} of
 {num_layers}), averaged over its {num_heads} heads</div>
<div class="simcity-key">Grey: roads</div>
</div>"""


def explain_html(
    explanation: Explanation,
    city: City,
    *,
    title: str = "",
    view_size: tuple[int, int] = (1200, 800),
) -> str:
    """The map page of one explained decision; ``title`` (escaped) defaults to the scenario."""
    names = [f"{d[NODE_NAME]} (node {i})" for i, (_, d) in enumerate(city.graph.nodes(data=True))]
    title = title or explanation.scenario
    page = deck_page(
        _layers(explanation, city, names),
        city.lon,
        city.lat,
        f"{title}: explained decision",
        view_size=view_size,
    )
    by_layer_head: list[list[float]] = next(
        (link.by_layer_head for node in explanation.nodes for link in node.attention), [[]]
    )  # (L, H)
    body_end = page.rindex("</body>")
    legend = _panel(explanation, title, len(by_layer_head), len(by_layer_head[-1]))
    return page[:body_end] + PANEL_CSS + legend + page[body_end:]


def write_explain_map(out_dir: Path, explanation: Explanation, city: City, title: str = "") -> Path:
    """``explain.html`` in ``out_dir``, atomically."""
    path = out_dir / "explain.html"
    write_atomic(path, explain_html(explanation, city, title=title))
    return path
