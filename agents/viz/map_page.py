"""The page around the interactive map: its legend and time control, and their script.

The script restyles the pydeck layers for the frame the slider picks and gives the
tooltips; it reads its data from a JSON element (``simcity-data``, see `agents.viz.maps`).
Everything from the run that reaches the panel is HTML-escaped; the script only ever
sets text (``textContent``, text tooltips), never HTML.
"""

from __future__ import annotations

import html
from typing import Any

from agents.viz.mapframes import (
    DETECTED_RGB,
    MISSED_RGB,
    RISK_STOPS,
    VC_SCALE,
    VC_STOPS,
    Frames,
    color_lut,
)
from simcity.records.daylog import DayLog

PANEL_PX = 290  # the panel's width with its margins; the initial view keeps clear of it


def gradient(stops: Any) -> str:
    """CSS for a colour bar of a colour scale's ``stops`` (a legend)."""
    colors = ", ".join(f"rgb({r},{g},{b})" for r, g, b in color_lut(stops, 9).tolist())
    return f"background: linear-gradient(to right, {colors})"


def panel(day: DayLog, frames: Frames, start: int, title: str, subtitle: str) -> str:
    """The legend and time control; every text from the run is escaped here."""
    esc = html.escape
    detected, missed = incident_counts(day, frames, start)
    when = "of the day" if start == 0 else f"open at {frames.label[start]}"
    ring = "display:inline-block;width:10px;height:10px;border-radius:50%;border:2px solid"
    return f"""<div id="simcity-panel">
<div class="simcity-title">{esc(title)}</div>
<div class="simcity-sub">{esc(subtitle)}</div>
<div class="simcity-time">
<button id="simcity-play" type="button" title="Play the day">&#9654;</button>
<input id="simcity-frame" type="range" min="0" max="{frames.num_frames - 1}" step="1"
 value="{start}" aria-label="time of day">
<span id="simcity-frame-label">{esc(frames.label[start])}</span></div>
<div class="simcity-key">Roads: v/c (whole day: worst hour)</div>
<div class="simcity-bar" style="{gradient(VC_STOPS)}"></div>
<div class="simcity-ticks">
<span>0</span><span>{VC_SCALE / 2:g}</span><span>{VC_SCALE:g}+</span></div>
<div class="simcity-key">Nodes: incident risk, incidents/h</div>
<div class="simcity-bar" style="{gradient(RISK_STOPS)}"></div>
<div class="simcity-ticks"><span>0</span><span>{frames.risk_scale:.2g}+</span></div>
<div class="simcity-key">Dot area: monitoring units (largest {frames.units_scale:.3g})</div>
<div class="simcity-key">Incidents <span id="simcity-inc-when">{esc(when)}</span>:
<span style="{ring} rgb{DETECTED_RGB}"></span> <span id="simcity-detected">{detected}</span>
 detected,
<span style="{ring} rgb{MISSED_RGB}"></span> <span id="simcity-missed">{missed}</span>
 missed</div>
</div>"""


def incident_counts(day: DayLog, frames: Frames, frame: int) -> tuple[int, int]:
    """(detected, missed) incidents open in ``frame`` (frame 0: all of the day), as the
    legend shows them when the slider is there."""
    active = frames.active(frame, day.incidents["start_min"])
    detected = int((day.detected & active).sum())
    return detected, int(active.sum()) - detected


PANEL_CSS = f"""<style>
#simcity-panel {{ position: absolute; top: 12px; left: 12px; z-index: 2; width: {PANEL_PX - 40}px;
  padding: 10px 12px; background: rgba(17, 24, 39, 0.88); color: #e5e7eb; border-radius: 6px;
  font: 12px/1.4 system-ui, sans-serif; }}
#simcity-panel .simcity-title {{ font-weight: 600; font-size: 14px; }}
#simcity-panel .simcity-sub {{ color: #9ca3af; margin-bottom: 6px; }}
#simcity-panel .simcity-time {{ display: flex; align-items: center; gap: 6px; margin: 6px 0; }}
#simcity-panel input {{ flex: 1; }}
#simcity-panel .simcity-key {{ margin-top: 6px; }}
#simcity-panel .simcity-bar {{ height: 8px; border-radius: 2px; margin-top: 2px; }}
#simcity-panel .simcity-ticks {{ display: flex; justify-content: space-between; color: #9ca3af; }}
</style>"""

PAGE_SCRIPT = """<script>
(() => {
  const D = JSON.parse(document.getElementById("simcity-data").textContent);
  const deck = typeof deckInstance === "undefined" ? null : deckInstance;
  const slider = document.getElementById("simcity-frame");
  const label = document.getElementById("simcity-frame-label");
  const play = document.getElementById("simcity-play");
  const incWhen = document.getElementById("simcity-inc-when");
  const incDetected = document.getElementById("simcity-detected");
  const incMissed = document.getElementById("simcity-missed");
  const pick = (lut, x, scale) => {
    const k = lut.length - 1;
    return lut[Math.max(0, Math.min(k, Math.round((x / scale) * k)))];
  };
  // Frames come quantised: units and risk in D.quantum of their scales, v/c in D.vcQuantum.
  const units = (f, i) => D.units[f][i] * D.quantum * D.unitsScale;
  const risk = (f, i) => D.risk[f][i] * D.quantum * D.riskScale;
  const vc = (f, j) => D.vc[f][j] * D.vcQuantum;
  const clip = (x) => Math.max(0, Math.min(1, x));
  const radius = (q) => D.rMin + (D.rMax - D.rMin) * Math.sqrt(clip(q * D.quantum));
  const fmt = (x) => Math.abs(x) >= 1000 ? Math.round(x).toLocaleString("en-US")
    : String(Number(x.toPrecision(3)));
  const wanted = D.labels.indexOf(decodeURIComponent(location.hash.slice(1)));
  let frame = wanted >= 0 ? wanted : D.start;  // map.html#08:00 opens on that hour
  const first = deck ? deck.props.layers.find((layer) => layer.id === "incidents") : null;
  const incidents = first ? first.props.data : [];
  // Tooltips are text (set with innerText), never HTML: names come from scenario files.
  const tooltip = (info) => {
    const o = info && info.object;
    if (!o || !info.layer) return null;
    const at = D.labels[frame];
    let text = o.tip || "";
    if (info.layer.id === "nodes") {
      text += `\n${at}: ${fmt(units(frame, o.i))} units, risk ${fmt(risk(frame, o.i))}/h`;
    } else if (info.layer.id === "roads") {
      text = `${D.names[D.roadTail[o.j]]} - ${D.names[D.roadHead[o.j]]}\n`
        + `capacity ${fmt(D.capacity[o.j])} veh/h\n${at}: v/c ${fmt(vc(frame, o.j))}`;
    }
    return {text, style: {whiteSpace: "pre-line", fontSize: "12px", maxWidth: "360px"}};
  };
  // The legend counts the incidents open in the frame shown (incident_counts in Python).
  const isOpen = (d, f) => f === 0 || (d.s < D.t1[f] && d.e > D.t0[f]);
  const counts = (f) => {
    let open = 0, found = 0;
    D.incS.forEach((s, k) => {
      if (isOpen({s, e: D.incE[k]}, f)) { open += 1; found += D.incD[k]; }
    });
    return [found, open - found];
  };
  const show = (f) => {
    frame = f;
    slider.value = String(f);
    label.textContent = D.labels[f];
    const [found, lost] = counts(f);
    incWhen.textContent = f === 0 ? "of the day" : `open at ${D.labels[f]}`;
    incDetected.textContent = String(found);
    incMissed.textContent = String(lost);
    if (!deck) return;
    const u = D.units[f], r = D.risk[f], v = D.vc[f];
    const layers = deck.props.layers.map((layer) => {
      if (layer.id === "nodes") {
        return layer.clone({
          getRadius: (d) => radius(u[d.i]),
          getFillColor: (d) => pick(D.riskLut, r[d.i] * D.quantum, 1),
          updateTriggers: {getRadius: f, getFillColor: f},
        });
      }
      if (layer.id === "roads") {
        return layer.clone({
          getColor: (d) => pick(D.vcLut, v[d.j] * D.vcQuantum, D.vcScale),
          updateTriggers: {getColor: f},
        });
      }
      if (layer.id === "incidents") {
        const open = incidents.filter((d) => isOpen(d, f));
        const ring = D.ringPx * Math.sqrt(D.ringCount / Math.max(open.length, 1));
        const r = Math.max(D.ringMinPx, Math.min(D.ringPx, ring));
        return layer.clone({data: open, getRadius: r, updateTriggers: {getRadius: f}});
      }
      return layer;
    });
    deck.setProps({layers});
  };
  slider.addEventListener("input", () => show(Number(slider.value)));
  let timer = null;
  play.addEventListener("click", () => {
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
      play.textContent = "\u25b6";
      return;
    }
    play.textContent = "\u275a\u275a";
    timer = setInterval(() => show(frame + 1 < D.labels.length ? frame + 1 : 1), 900);
  });
  // The camera that fits the city beside the panel in this window (as maps.fit_view does).
  const worldX = (lon) => (512 * (lon + 180)) / 360;
  const worldY = (lat) => {
    const phi = (Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180;
    return (512 * (Math.PI - Math.log(Math.tan(Math.PI / 4 + phi / 2)))) / (2 * Math.PI);
  };
  const fitView = (width, height) => {
    const m = D.marginPx, left = D.panelPx;
    const freeW = Math.max(width - left - 2 * m, 50), freeH = Math.max(height - 2 * m, 50);
    const [x0, x1] = [worldX(D.bounds[0]), worldX(D.bounds[2])];
    const [y0, y1] = [worldY(D.bounds[3]), worldY(D.bounds[1])];
    const zoom = Math.min(
      Math.log2(freeW / Math.max(x1 - x0, 1e-9)), Math.log2(freeH / Math.max(y1 - y0, 1e-9)), 20);
    const scale = 2 ** zoom;
    const midX = (x0 + x1) / 2 - (left + m + freeW / 2 - width / 2) / scale;
    const midY = (y0 + y1) / 2;
    const lat = (2 * Math.atan(Math.exp(Math.PI - (2 * Math.PI * midY) / 512)) * 180) / Math.PI;
    return {longitude: (midX / 512) * 360 - 180, latitude: lat - 90, zoom};
  };
  const box = document.getElementById("deck-container");
  if (deck && box && box.clientWidth > 0 && box.clientHeight > 0) {
    deck.setProps({initialViewState: fitView(box.clientWidth, box.clientHeight)});
  }
  if (deck) {
    deck.setProps({
      getTooltip: tooltip,
      onAfterRender: () => { document.documentElement.dataset.rendered = "1"; },
    });
  }
  show(frame);
})();
</script>"""
