"""What a map shows, frame by frame: the whole day, then each hour (or block of hours).

F frames, T steps, N nodes, R roads (a road is both directions of a link pair), I
incidents. In a frame, a node's monitoring units and incident risk are means over the
frame's steps and a road's v/c is the larger direction's mean; in the day frame a road
shows its worst hour. The colour and size scales here are shared by the interactive
(`agents.viz.maps`) and static (`agents.viz.static_map`) maps, so both read the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simcity.records.daylog import DayLog
from simcity.records.results import clock

MAX_FRAMES = 49  # the day plus at most 48 hours (or blocks of hours)
DAY_LABEL = "whole day"

# Road colour by v/c: slate at free flow, amber near capacity, red beyond.
VC_SCALE = 1.5
Stops = tuple[tuple[float, tuple[int, int, int]], ...]
VC_STOPS: Stops = (
    (0.0, (100, 116, 139)),
    (0.6, (148, 163, 184)),
    (0.9, (245, 158, 11)),
    (1.2, (239, 68, 68)),
    (1.5, (190, 18, 60)),
)
# Node colour by incident risk, from low (cyan) to the city's highest (magenta).
RISK_STOPS: Stops = ((0.0, (34, 211, 238)), (0.5, (129, 140, 248)), (1.0, (232, 121, 249)))
DETECTED_RGB = (74, 222, 128)
MISSED_RGB = (248, 113, 113)
LUT_SIZE = 64
RADIUS_MIN_PX, RADIUS_MAX_PX = 2.5, 16.0
RING_PX, RING_MIN_PX, RING_COUNT = 10.0, 4.0, 40  # ring size, shrinking past 40 rings


def color_lut(stops: Stops, size: int = LUT_SIZE) -> np.ndarray:
    """(size, 3) uint8 colours interpolated between ``(position, rgb)`` stops over [0, max].

    >>> color_lut(((0.0, (0, 0, 0)), (1.0, (255, 255, 255))), size=3).tolist()
    [[0, 0, 0], [128, 128, 128], [255, 255, 255]]
    """
    where = np.array([p for p, _ in stops]) / stops[-1][0]
    rgb = np.array([c for _, c in stops], dtype=float)
    x = np.linspace(0.0, 1.0, size)
    channels = [np.interp(x, where, rgb[:, k]) for k in range(3)]
    return np.stack(channels, axis=1).round().astype(np.uint8)


def lut_colors(values: np.ndarray, scale: float, lut: np.ndarray) -> np.ndarray:
    """Colours (..., 3) of ``values`` on a LUT spanning [0, scale]; the JS map does the same."""
    k = len(lut) - 1
    index = np.clip(np.round(np.asarray(values, dtype=float) / scale * k), 0, k).astype(int)
    return lut[index]


def node_radius_px(units: np.ndarray, units_scale: float) -> np.ndarray:
    """Dot radius in pixels: area grows with the units allocated (the JS map does the same)."""
    share = np.clip(np.asarray(units, dtype=float) / units_scale, 0.0, 1.0)
    return RADIUS_MIN_PX + (RADIUS_MAX_PX - RADIUS_MIN_PX) * np.sqrt(share)


def ring_radius_px(num_incidents: int) -> float:
    """Incident ring radius: smaller when many are on show (the JS map does the same)."""
    ring = RING_PX * math.sqrt(RING_COUNT / max(num_incidents, 1))
    return max(RING_MIN_PX, min(RING_PX, ring))


@dataclass(frozen=True)
class Frames:
    """A day's map frames; frame 0 is the whole day."""

    label: list[str]  # F
    t0_min: np.ndarray  # (F,) frame start, minutes since the episode start
    t1_min: np.ndarray  # (F,) frame end
    units: np.ndarray  # (F, N) mean monitoring units
    risk_per_h: np.ndarray  # (F, N) mean expected incidents per hour
    road_vc: np.ndarray  # (F, R)
    road_tail: np.ndarray  # (R,) node index
    road_head: np.ndarray  # (R,)
    road_capacity_veh_h: np.ndarray  # (R,) the larger direction's
    incident_end_min: np.ndarray  # (I,) end, or the end of the run for open ones
    units_scale: float  # units at the largest dot
    risk_scale: float  # risk at the top of the colour scale

    start_hour_local: np.ndarray  # (F,) local hour at each frame's start (NaN for the day)
    block_h: int  # hours per frame after the first

    @property
    def num_frames(self) -> int:
        return len(self.label)

    def active(self, frame: int, start_min: np.ndarray) -> np.ndarray:
        """(I,) whether each incident was open during ``frame`` (all of them on the day)."""
        if frame == 0:
            return np.ones(len(start_min), dtype=bool)
        return (start_min < self.t1_min[frame]) & (self.incident_end_min > self.t0_min[frame])

    def frame_at(self, hour_local: float) -> int:
        """The first frame that covers local ``hour_local``; 0 (the day) when none does."""
        offset = (hour_local - self.start_hour_local[1:]) % 24.0
        hits = np.flatnonzero(offset < self.block_h)
        return int(hits[0]) + 1 if len(hits) else 0


def roads(day: DayLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Road of each link, and each road's (tail, head) nodes: both directions share one."""
    low = np.minimum(day.link_tail, day.link_head)
    high = np.maximum(day.link_tail, day.link_head)
    pairs, road_of_link = np.unique(low * day.num_nodes + high, return_inverse=True)
    return road_of_link, pairs // day.num_nodes, pairs % day.num_nodes


def road_paths(day: DayLog) -> list[np.ndarray] | None:
    """Each road's (P, 2) lon/lat points, in `roads` order, where the day has real
    streets; None where links are straight (cities without geometry, older run folders)."""
    if day.link_geometry is None:
        return None
    road_of_link, _, _ = roads(day)
    first_link = np.full(int(road_of_link.max()) + 1, -1)
    first_link[road_of_link[::-1]] = np.arange(len(road_of_link))[::-1]
    return [day.link_geometry[k] for k in first_link]


def map_frames(day: DayLog) -> Frames:
    """The day frame and one frame per hour (hours grouped when there are more than 48)."""
    t, dt = day.num_steps, day.dt_min
    hours = max(1, math.ceil(t * dt / 60.0))
    block_h = math.ceil(hours / (MAX_FRAMES - 1))
    group = np.floor(day.time_min / (60.0 * block_h)).astype(int)
    groups, group_of_step = np.unique(group, return_inverse=True)
    member = np.zeros((len(groups), t))
    member[group_of_step, np.arange(t)] = 1.0
    first = member.argmax(axis=1)
    mean = member / member.sum(axis=1, keepdims=True)  # (G, T)
    every = np.full((1, t), 1.0 / t)

    def frames_of(values: np.ndarray) -> np.ndarray:
        return np.concatenate([every @ values, mean @ values]).astype(np.float64)

    units = frames_of(day.allocation.astype(np.float64))
    risk = frames_of(day.risk_per_h.astype(np.float64))
    road_of_link, road_tail, road_head = roads(day)
    link_vc = mean @ day.link_vc.astype(np.float64)  # (G, L)
    road_vc = np.zeros((len(road_tail), len(groups)))
    np.maximum.at(road_vc, road_of_link, link_vc.T)
    road_vc = np.concatenate([road_vc.max(axis=1)[None, :], road_vc.T])
    capacity = np.zeros(len(road_tail))
    np.maximum.at(capacity, road_of_link, day.capacity_veh_h)
    start_h = day.hour_local - dt / 120.0  # local hour at the start of each step
    labels = [
        clock(start_h[s]) if block_h == 1 else f"{clock(start_h[s])}+{block_h}h" for s in first
    ]
    t0 = np.concatenate([[0.0], day.time_min[first]])
    t1 = np.concatenate([[t * dt], day.time_min[first] + 60.0 * block_h])
    hourly = units[1:] if len(units) > 1 else units
    return Frames(
        label=[DAY_LABEL, *labels],
        t0_min=t0,
        t1_min=np.minimum(t1, t * dt),
        units=units,
        risk_per_h=risk,
        road_vc=road_vc,
        road_tail=road_tail,
        road_head=road_head,
        road_capacity_veh_h=capacity,
        incident_end_min=np.minimum(day.incidents["end_min"], t * dt),
        units_scale=max(float(hourly.max()), 1e-9),
        risk_scale=max(float(np.quantile(risk, 0.99)), 1e-9),
        start_hour_local=np.concatenate([[np.nan], start_h[first] % 24.0]),
        block_h=block_h,
    )


def incident_positions(day: DayLog) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of each incident: the middle of an accident's link, else its node."""
    node, link = day.incidents["node"], day.incidents["link"]
    on_link = link >= 0
    safe = np.where(on_link, link, 0)
    tail, head = day.link_tail[safe], day.link_head[safe]
    lon = np.where(on_link, (day.lon[tail] + day.lon[head]) / 2, day.lon[node])
    lat = np.where(on_link, (day.lat[tail] + day.lat[head]) / 2, day.lat[node])
    if day.link_geometry is not None:  # real streets: halfway along the street itself
        for k in np.flatnonzero(on_link):
            lon[k], lat[k] = halfway(day.link_geometry[link[k]])
    return lon, lat


def halfway(points: np.ndarray) -> tuple[float, float]:
    """The point halfway along a (P, 2) polyline (degrees as planar; fine at street scale).

    >>> halfway(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 3.0]]))
    (1.0, 1.0)
    """
    step = np.hypot(*np.diff(points, axis=0).T)  # (P - 1,)
    along = np.concatenate([[0.0], np.cumsum(step)])
    half = along[-1] / 2
    k = min(int(np.searchsorted(along, half, side="right")) - 1, len(step) - 1)
    share = (half - along[k]) / step[k] if step[k] > 0 else 0.0
    x, y = points[k] + share * (points[k + 1] - points[k])
    return float(x), float(y)
