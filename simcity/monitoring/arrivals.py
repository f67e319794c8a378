"""The incidents that arrive over one interval: Poisson at the true rates, plus planned ones.

N nodes, L links, I new incidents. Every number comes from the interval's words, one per
kind of draw and site (`simcity.monitoring.streams`), so policies facing the same seed
meet the same incidents wherever their rates agree, even after their histories part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simcity.city.graph import City
from simcity.config.scenario import Scenario
from simcity.monitoring import incidents as inc
from simcity.monitoring import streams
from simcity.monitoring.streams import IntervalWords
from simcity.monitoring.truth import TrueState


def arrivals(
    city: City,
    scenario: Scenario,
    truth: TrueState,
    t0_min: float,
    t1_min: float,
    scheduled: Sequence[tuple[int, float]],
    words: IntervalWords,
) -> inc.Incidents:
    """New incidents over [t0, t1): accidents on links, pollution and overloads at nodes at
    the rates of ``truth``, then the ``scheduled`` ones due (index into the scenario's
    planned incidents, start minute). Accidents happen at their link's head node."""
    cfg = scenario.incidents
    num_links, n = city.num_links, city.num_nodes
    rates = (truth.accident_rate_per_h, truth.pollution_rate_per_h, truth.overload_rate_per_h)
    site, start, draws = inc.sample_arrivals(np.concatenate(rates), t0_min, t1_min, words.arrival)
    # Sites: the links (accidents), then the nodes for pollution, then for overloads; the
    # block a site falls in is its kind (ACCIDENT, POLLUTION, GRID_OVERLOAD = 0, 1, 2).
    kind = np.searchsorted(np.array([num_links, num_links + n]), site, side="right")
    accident = kind == inc.ACCIDENT
    node = np.where(
        accident, city.link_head[np.minimum(site, num_links - 1)], (site - num_links) % n
    )
    link = np.where(accident, site, -1)
    sigma = cfg.severity_sigma
    severity = (  # lognormal of mean 1, by inversion
        np.exp(sigma * (streams.normal(draws[:, streams.SEVERITY]) - 0.5 * sigma))
        if sigma
        else np.ones(len(kind))
    )
    mean_duration = np.asarray(cfg.mean_duration_min)[kind]
    duration = -np.log(draws[:, streams.DURATION]) * mean_duration
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
        clock=-np.log(draws[:, streams.CLOCK]),
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
        clock=-np.log(streams.unit(words.scheduled[[i for i, _ in scheduled]])),
    )
    return inc.Incidents.concat(new, extra)
