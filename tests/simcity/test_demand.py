"""Demand: gravity model, day profile, events."""

from __future__ import annotations

import numpy as np
import pytest

from simcity.config.scenario import DayProfile, EventConfig
from simcity.traffic.demand import day_shares, event_od, gravity_od, od_at


def test_gravity_by_hand() -> None:
    # Zone 0 sends 100 veh/h; zones 1 and 2 attract 1 and 2 jobs at 10 and 20 min.
    production = np.array([100.0, 0.0, 0.0])
    attraction = np.array([0.0, 1.0, 2.0])
    times = np.array([[0, 10, 20], [10, 0, 10], [20, 10, 0]], dtype=float)
    od = gravity_od(production, attraction, times, total_veh_h=100.0, decay_per_min=0.1)
    w1, w2 = 1 * np.exp(-1.0), 2 * np.exp(-2.0)
    assert od[0, 1] == pytest.approx(100 * w1 / (w1 + w2))
    assert od[0, 2] == pytest.approx(100 * w2 / (w1 + w2))
    assert od.sum() == pytest.approx(100.0)


def test_gravity_skips_unreachable_zones() -> None:
    times = np.array([[0, np.inf], [np.inf, 0]])
    od = gravity_od(np.ones(2), np.ones(2), times, total_veh_h=10, decay_per_min=0.1)
    assert od.sum() == 0 and np.isfinite(od).all()


def test_day_profile_peaks_and_direction() -> None:
    profile = DayProfile()
    hours = np.arange(0, 24, 0.25)
    levels = np.array([day_shares(profile, h).level for h in hours])
    assert hours[levels.argmax()] in (8.0, 17.5)
    assert day_shares(profile, 3.0).level == pytest.approx(profile.night_level, rel=0.1)
    base = np.array([[0.0, 100.0], [0.0, 0.0]])  # home zone 0 -> work zone 1
    am, pm = od_at(base, profile, 8.0), od_at(base, profile, 17.5)
    assert am[0, 1] > am[1, 0] and pm[1, 0] > pm[0, 1]
    assert am.sum() == pytest.approx(100.0 * day_shares(profile, 8.0).level)


def test_event_trips_before_and_after() -> None:
    event = EventConfig(
        name="game",
        lon=0,
        lat=0,
        start="19:00",
        end="22:00",
        attendees=30000,
        car_share=0.5,
        arrival_window_h=1.5,
    )
    weights = np.array([1.0, 3.0, 0.0])
    before = event_od(event, 2, weights, 18.0)
    assert before[:, 2].sum() == pytest.approx(15000 / 1.5)
    assert before[1, 2] == pytest.approx(3 * before[0, 2])
    assert event_od(event, 2, weights, 20.0).sum() == 0
    assert event_od(event, 2, weights, 22.5)[2, :].sum() == pytest.approx(15000)
