"""The incidents that arrive over one interval: Poisson at the true rates, plus planned ones.

N nodes, L links, I new incidents. Arrivals draw from a generator of their own per
interval (`interval_rng`), so policies facing the same seed meet the same incidents even
after their histories part (`simcity.monitoring.incidents`, "Common random numbers").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simcity.city.graph import City
from simcity.config.scenario import Scenario
from simcity.monitoring import incidents as inc
from simcity.monitoring.truth import TrueState


def interval_rng(key: int, t0_min: float) -> np.random.Generator:
    """The arrivals' generator of the interval that starts at ``t0_min``.

    >>> float(interval_rng(7, 15.0).random()) == float(interval_rng(7, 15.0).random())
    True
    """
    return np.random.default_rng([key, round(t0_min * 1000)])


def arrivals(
    city: City,
    scenario: Scenario,
    truth: TrueState,
    t0_min: float,
    t1_min: float,
    scheduled: Sequence[tuple[int, float]],
    rng: np.random.Generator,
) -> inc.Incidents:
    """New incidents over [t0, t1): accidents on links, pollution and overloads at nodes at
    the rates of ``truth``, then the ``scheduled`` ones due (index into the scenario's
    planned incidents, start minute). Accidents happen at their link's head node."""
    cfg = scenario.incidents
    links, accident_t = inc.sample_arrivals(truth.accident_rate_per_h, t0_min, t1_min, rng)
    polluted, pollution_t = inc.sample_arrivals(truth.pollution_rate_per_h, t0_min, t1_min, rng)
    overloaded, overload_t = inc.sample_arrivals(truth.overload_rate_per_h, t0_min, t1_min, rng)
    kind = np.concatenate(
        [
            np.full(len(links), inc.ACCIDENT),
            np.full(len(polluted), inc.POLLUTION),
            np.full(len(overloaded), inc.GRID_OVERLOAD),
        ]
    )
    node = np.concatenate([city.link_head[links], polluted, overloaded])
    link = np.concatenate([links, np.full(len(polluted) + len(overloaded), -1)])
    start = np.concatenate([accident_t, pollution_t, overload_t])
    sigma = cfg.severity_sigma
    severity = (
        rng.lognormal(-0.5 * sigma**2, sigma, size=len(kind)) if sigma else np.ones(len(kind))
    )
    mean_duration = np.asarray(cfg.mean_duration_min)[kind]
    duration = rng.exponential(1.0, size=len(kind)) * mean_duration
    damage_rate = np.asarray(cfg.damage_per_min)[kind] * severity
    new = inc.Incidents(
        kind=kind.astype(np.int64),
        node=node.astype(np.int64),
        link=link.astype(np.int64),
        severity=severity,
        start_min=start,
        end_min=start + duration,
        damage_per_min=damage_rate,
        detected_min=np.full(len(kind), np.nan),
        damage=np.zeros(len(kind)),
        clock=rng.exponential(1.0, size=len(kind)),
    )
    if not scheduled:
        return new
    planned = [cfg.scheduled[i] for i, _ in scheduled]
    starts = np.array([t for _, t in scheduled])
    nodes = np.array([city.nearest_node(s.lon, s.lat) for s in planned], dtype=np.int64)
    kinds = np.array([inc.INCIDENT_TYPES.index(s.kind) for s in planned], dtype=np.int64)
    extra = inc.Incidents(
        kind=kinds,
        node=nodes,
        link=np.full(len(planned), -1, dtype=np.int64),
        severity=np.array([s.severity for s in planned]),
        start_min=starts,
        end_min=starts + np.array([s.duration_min for s in planned]),
        damage_per_min=np.array([s.damage_per_min * s.severity for s in planned]),
        detected_min=np.full(len(planned), np.nan),
        damage=np.zeros(len(planned)),
        clock=rng.exponential(1.0, size=len(planned)),
    )
    return inc.Incidents.concat(new, extra)
