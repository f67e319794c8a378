"""Figures rounded to what they mean: intervals of float noise print as 0, a constant
is charted flat, and the report's key figures follow the same rule."""

from __future__ import annotations

import numpy as np
import pytest

from agents.viz.numbers import format_mean_ci, mean_ci_parts, number
from agents.viz.report import _mean_ci
from agents.viz.report_figures import kpi_figure, steady_axis


@pytest.mark.parametrize(
    ("mean", "half", "text"),
    [
        (6.857142857, 3.523e-08, "6.857 ± 0"),  # the eval cell
        (20.0, 4.974e-08, "20 ± 0"),  # the key figure
        (6.857142857, 0.3523, "6.86 ± 0.35"),
        (6.857142857, 3.523, "6.9 ± 3.5"),
        (1840.2, 212.7, "1,840 ± 210"),
        (1234567.8, 0.4, "1,234,568 ± 0"),
        (-0.0421, 0.00123, "-0.0421 ± 0.0012"),
        (0.0, 0.0, "0 ± 0"),
        (0.0, 0.0123, "0.000 ± 0.012"),
        (float("nan"), 1.0, "– ± –"),
    ],
)
def test_an_interval_is_rounded_to_two_figures_and_noise_to_zero(
    mean: float, half: float, text: str
) -> None:
    assert format_mean_ci(mean, half) == text


def test_no_rounding_prints_minus_zero_or_an_exponent() -> None:
    for mean in (-1e-12, -0.0004, 123456789.0, 1e-7):
        for half in (0.0, 1e-20, 3e-5, 0.5, 777.0):
            mean_text, half_text = mean_ci_parts(mean, half)
            assert "e" not in half_text and not half_text.startswith("-")
            assert mean_text != "-0"
    assert number(1234567.8) == "1,234,568" and number(0.00012345) == "0.0001234"


def test_the_report_key_figures_print_noise_as_zero() -> None:
    assert _mean_ci(20.0, 4.974e-08, several=True) == ("20", "0")
    assert _mean_ci(20.0, 4.974e-08, several=False) == ("20", "–")


def _steps(kwh: np.ndarray) -> dict[str, np.ndarray]:
    t = np.arange(kwh.size, dtype=float)
    return {
        "episode": np.zeros(kwh.size),
        "hour_local": 8.0 + t * 0.25,
        "time_min": (t + 1) * 15.0,
        "damage": np.linspace(0.0, 5.0, kwh.size),
        "incidents_detected": np.ones(kwh.size),
        "incidents_missed": np.zeros(kwh.size),
        "incidents_new": np.ones(kwh.size),
        "compute_kwh": kwh,
        "compute_gco2": kwh * 400.0,
        "datacentre_g_per_kwh": 300.0 + t,
        "units_used": np.full(kwh.size, 20.0),
    }


def test_a_constant_with_float_noise_is_charted_flat() -> None:
    noise = np.random.default_rng(0).normal(0.0, 1e-15, 16)
    fig = kpi_figure(_steps(0.204 + noise), dt_min=15.0, budget_units=20.0)
    ax = fig.axes[2]
    low, high = ax.get_ylim()
    level = 0.204 * 4  # kWh per hour
    assert low == pytest.approx(0.9 * level) and high == pytest.approx(1.1 * level)
    assert list(ax.get_yticks()) == pytest.approx([level])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["0.816 (constant)"]


def test_a_varying_series_keeps_its_own_axis() -> None:
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    values = np.array([7.5, 8.0, 9.5])
    ax.plot(values)
    assert not steady_axis(ax, values)
    assert steady_axis(ax, np.full(3, 0.816) + np.array([0.0, 1e-16, -1e-16]))
    assert not steady_axis(ax, np.array([np.nan]))
