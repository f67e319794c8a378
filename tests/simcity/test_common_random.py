"""Common random numbers by construction: one substream per kind of draw, site and interval.

Two runs from the same seed meet the same incidents, sensor failures and reading noise
wherever their states agree, whatever counts or allocations differ elsewhere
(`simcity.monitoring.streams`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pytest
from scipy import stats

from simcity.compute.bill import PolicyCompute
from simcity.config.scenario import load_scenario
from simcity.monitoring import incidents as inc
from simcity.monitoring import streams
from simcity.monitoring.arrivals import arrivals
from simcity.monitoring.monitor import (
    MonitoringInputs,
    MonitoringState,
    layout,
    step_monitoring,
)
from simcity.monitoring.truth import TrueState
from simcity.world import World

Row = tuple[float, ...]


def _rows(table: inc.Incidents, link_sites: bool = True) -> dict[tuple[int, int], list[Row]]:
    """Each (kind, site)'s incidents, in order: site = link for accidents, node otherwise."""
    out: dict[tuple[int, int], list[Row]] = defaultdict(list)
    for i in range(table.num):
        kind = int(table.kind[i])
        site = int(table.link[i]) if kind == inc.ACCIDENT and link_sites else int(table.node[i])
        out[kind, site].append(
            (
                float(table.start_min[i]),
                float(table.severity[i]),
                float(table.end_min[i]),
                float(table.damage_per_min[i]),
                float(table.clock[i]),
            )
        )
    return out


@pytest.fixture(scope="module")
def downtown() -> World:
    """Downtown after 20 intervals, whose monitoring the tests step by hand."""
    world = World(load_scenario("downtown"), rng=np.random.default_rng(4))
    for _ in range(20):
        world.advance(np.full(world.city.num_nodes, 0.2))
    return world


def test_one_sites_count_moves_no_other_sites_draws(downtown: World) -> None:
    city, scenario = downtown.city, downtown.scenario
    setup = downtown.view.monitoring.setup
    words = streams.interval_words(np.array([3, 5], np.uint64), 300.0, layout(setup))
    n, num_links = city.num_nodes, city.num_links
    # About one arrival per site in the interval: most sites have some, many have several.
    base = TrueState(np.zeros((n, 3)), np.full(num_links, 4.0), np.full(n, 4.0), np.full(n, 4.0))
    a = arrivals(city, scenario, base, 300.0, 315.0, (), words)
    rows_a = _rows(a)
    busy_link = max(range(num_links), key=lambda s: len(rows_a.get((inc.ACCIDENT, s), [])))
    pollution = base.pollution_rate_per_h.copy()
    pollution[7] *= 6.0  # more pollution at node 7
    accident = base.accident_rate_per_h.copy()
    accident[busy_link] = 0.0  # none on the busiest link
    b = arrivals(city, scenario, base._replace(pollution_rate_per_h=pollution,
                 accident_rate_per_h=accident), 300.0, 315.0, (), words)  # fmt: skip
    rows_b = _rows(b)
    changed = {(inc.POLLUTION, 7), (inc.ACCIDENT, busy_link)}
    assert len(rows_b[inc.POLLUTION, 7]) > len(rows_a.get((inc.POLLUTION, 7), []))
    assert len(rows_a[inc.ACCIDENT, busy_link]) >= 2 and (inc.ACCIDENT, busy_link) not in rows_b
    assert a.num > 500 and a.num - b.num != 0
    others = set(rows_a) | set(rows_b)
    for key in others - changed:
        assert rows_a.get(key) == rows_b.get(key), key
    # At node 7 the first arrivals are the ones it had: the extra ones come after.
    first = rows_a.get((inc.POLLUTION, 7), [])
    assert rows_b[inc.POLLUTION, 7][: len(first)] == first


def test_sensor_counts_at_one_site_move_no_other_sites_draws(downtown: World) -> None:
    state = downtown.view.monitoring
    up = np.array(state.up)
    up[3, 0] = 0  # node 3's traffic counters are all down in the second run
    up[10] = state.installed[10]
    other = dataclasses.replace(state, up=up)
    allocation = np.full(downtown.city.num_nodes, 0.2)
    (a, _), (b, _) = (_step(downtown, s, allocation) for s in (state, other))
    assert (up != state.up).any()
    mask = np.ones(state.up.shape, bool)
    mask[3, 0] = mask[10] = False
    np.testing.assert_array_equal(a.up[mask], b.up[mask])
    # Readings elsewhere draw the same noise.
    assert a.estimates is not None and b.estimates is not None
    np.testing.assert_array_equal(
        np.delete(a.estimates, [3, 10], 0), np.delete(b.estimates, [3, 10], 0)
    )
    # Arrivals do not read the sensors' draws either.
    np.testing.assert_array_equal(a.open.start_min, b.open.start_min)
    np.testing.assert_array_equal(a.open.severity, b.open.severity)


def test_allocation_at_some_nodes_moves_no_other_nodes_draws(downtown: World) -> None:
    n = downtown.city.num_nodes
    state = downtown.view.monitoring
    allocation = np.full(n, 0.2)
    moved = allocation.copy()
    moved[[4, 40]] = [5.0, 0.0]
    (a, _), (b, _) = (_step(downtown, state, x) for x in (allocation, moved))
    np.testing.assert_array_equal(a.up, b.up)
    np.testing.assert_array_equal(a.open.start_min, b.open.start_min)
    # The reading noise at other nodes is the same draw at the same spread.
    assert a.estimates is not None and b.estimates is not None
    other = np.ones(n, bool)
    other[[4, 40]] = False
    np.testing.assert_array_equal(a.estimates[other], b.estimates[other])
    assert not np.array_equal(a.estimates[4], b.estimates[4])


def _step(
    world: World, state: MonitoringState, allocation: np.ndarray
) -> tuple[MonitoringState, object]:
    view = world.view
    assert view.truth is not None
    inputs = MonitoringInputs(
        view.truth, allocation, view.now_min, view.now_min + 15.0, (), PolicyCompute(), 300.0
    )
    return step_monitoring(state, inputs, world._streams)


def test_two_policies_on_one_seed_meet_the_same_incidents_where_rates_agree() -> None:
    """A policy that differs at a few nodes for a few steps changes detections, so traffic
    and incident rates downstream, and some sites' counts; wherever both runs have an
    arrival j at a site in an interval, it is the same incident (time, severity, damage
    rate), whatever the counts at that site or elsewhere."""
    base = load_scenario("downtown")
    cfg = base.incidents  # ten times the incidents: many per interval, so counts part
    busy = {k: 10 * getattr(cfg, k) for k in ("accident_per_mveh_km", "pollution_per_h")}
    scenario = base.model_copy(update={"incidents": cfg.model_copy(update=busy)})
    a = World(scenario, rng=np.random.default_rng(11))
    b = World(scenario, a.city, rng=np.random.default_rng(11))
    n, steps = a.city.num_nodes, 48
    budget = scenario.monitoring.budget_units
    uniform = np.full(n, budget / n)
    rates: list[tuple[TrueState, TrueState]] = []
    for k in range(steps):
        a.advance(uniform)
        # For a while B watches where the incidents are (it reads the truth).
        found = b.view.monitoring.open.node
        focused = np.bincount(found, minlength=n) * (budget / max(len(found), 1))
        b.advance(focused if 8 <= k < 30 and len(found) else uniform)
        np.testing.assert_array_equal(a.view.monitoring.up, b.view.monitoring.up)
        ta, tb = a.view.truth, b.view.truth
        assert ta is not None and tb is not None
        rates.append((ta, tb))
    detected = [w.view.monitoring.all_incidents().detected_min for w in (a, b)]
    assert detected[0].shape != detected[1].shape or not np.array_equal(*detected, equal_nan=True)
    dt = scenario.time.dt_min

    def by_interval(world: World) -> dict[tuple[int, int, int], list[Row]]:
        table = world.view.monitoring.all_incidents()
        out = {}
        for (kind, site), rows in _rows(table).items():
            for row in rows:  # (start, severity, end, damage rate, clock)
                out.setdefault((int(row[0] // dt), kind, site), []).append(row[:2] + row[3:4])
        return out

    rows_a, rows_b = by_interval(a), by_interval(b)
    compared = parted = 0
    for key in set(rows_a) | set(rows_b):
        few, many = sorted((rows_a.get(key, []), rows_b.get(key, [])), key=len)
        # Arrival j at a site is the same incident in both runs while both have one: the
        # run with fewer there has only incidents the other has (tables are not in
        # arrival order, so as sets).
        assert set(few) <= set(many), key
        compared += len(few)
        parted += len(few) != len(many)
    moved = sum(int((ta.accident_rate_per_h != tb.accident_rate_per_h).sum()) for ta, tb in rates)
    # The runs parted (rates moved, some counts too), and many incidents still agree.
    print("compared", compared, "parted", parted, "moved", moved)
    assert moved > 0 and parted > 0 and compared > 30


def test_words_and_their_numbers_are_uniform_and_independent() -> None:
    key = streams.episode_key(np.random.default_rng(0))
    lay = streams.Layout(arrival=20_000, scheduled=0, sensor=0, noise=0)
    now, later = (streams.interval_words(key, t, lay).arrival for t in (15.0, 30.0))
    u, v = streams.unit(now), streams.unit(later)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # Neighbouring sites, and a site in the next interval, are uncorrelated.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.03
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.03
    draws = streams.per_arrival(now[:5000], np.full(5000, 3))  # (15000, 4)
    for column in draws.T:
        assert stats.kstest(column, "uniform").pvalue > 1e-3
    assert np.abs(np.corrcoef(draws.T) - np.eye(4)).max() < 0.03
    z = streams.normal(u)
    assert stats.kstest(z, "norm").pvalue > 1e-3


@pytest.mark.parametrize(("n", "p"), [(1, 0.3), (4, 0.05), (12, 0.7)])
def test_binomial_by_inversion_has_binomial_law(n: int, p: float) -> None:
    uniform = np.random.default_rng(n).random(40_000)
    counts = streams.binomial_by_inversion(np.full(len(uniform), n), p, uniform)
    observed = np.bincount(counts, minlength=n + 1)
    expected = stats.binom.pmf(np.arange(n + 1), n, p) * len(uniform)
    keep = expected > 5
    chi2 = ((observed[keep] - expected[keep]) ** 2 / expected[keep]).sum()
    assert chi2 < stats.chi2.ppf(0.999, keep.sum() - 1)
    assert counts.max() <= n
