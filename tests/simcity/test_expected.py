"""Expected incident rates from estimates: the true rates' shapes under the scenario's gains."""

from __future__ import annotations

import numpy as np

from simcity.config.monitoring import IncidentConfig
from simcity.monitoring import incidents as inc
from simcity.monitoring.expected import expected_rates

GAINS = IncidentConfig(congestion_gain=5.0, overload_gain=3.0)


def test_each_kind_follows_its_true_rate_function_under_the_scenarios_gains() -> None:
    rng = np.random.default_rng(0)
    congestion = rng.uniform(0.0, 2.0, 50)  # below the true rate's saturation at v/c = 2
    load_ratio = rng.uniform(0.0, 2.0, 50)
    emissions_ratio = rng.uniform(0.0, 4.0, 50)
    rates = expected_rates(congestion, load_ratio, emissions_ratio, GAINS)
    assert rates.shape == (50, 3)
    # One in-link per node, its flow in proportion to its v/c (capacity 1000 veh/h).
    accident = inc.accident_rate_per_h(
        1000.0 * congestion,
        np.ones(50),
        congestion,
        per_mveh_km=GAINS.accident_per_mveh_km,
        congestion_gain=GAINS.congestion_gain,
    )
    pollution = inc.pollution_rate_per_h(
        emissions_ratio * GAINS.reference_emissions_g_h,
        per_h=GAINS.pollution_per_h,
        reference_g_h=GAINS.reference_emissions_g_h,
    )
    overload = inc.overload_rate_per_h(
        load_ratio * 100.0, np.full(50, 100.0), per_h=1.0, gain=GAINS.overload_gain
    )
    for kind, true in ((inc.ACCIDENT, accident), (inc.POLLUTION, pollution), (2, overload)):
        ratio = true / rates[:, kind]
        np.testing.assert_allclose(ratio[np.isfinite(ratio)], ratio[0], rtol=1e-12)
    assert inc.GRID_OVERLOAD == 2


def test_other_gains_move_the_rates_and_batches_broadcast() -> None:
    nodes = np.array([[0.5, 1.2, 1.0], [1.0, 0.8, 3.5]])  # (B=2, N=3)
    default = expected_rates(nodes, nodes, nodes, IncidentConfig())
    other = expected_rates(nodes, nodes, nodes, GAINS)
    assert default.shape == other.shape == (2, 3, 3)
    np.testing.assert_allclose(default[..., 0], nodes * (1 + 2 * nodes**2))
    np.testing.assert_allclose(other[..., 0], nodes * (1 + 5 * nodes**2))
    np.testing.assert_array_equal(default[..., 1], other[..., 1])  # no gain of its own
    np.testing.assert_allclose(other[..., 2], np.exp(3 * (np.minimum(nodes, 1.5) - 1)))
    assert other[1, 2, 1] == 9.0  # emissions saturate at 3
