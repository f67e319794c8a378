"""Numbers as text, rounded to what they mean: one rule for the tables, the report and logs.

A mean and its 95% interval print together: the interval to two significant figures, the
mean to the same decimal place, but never finer than the mean's own resolution (four
significant figures; whole numbers from 1,000 up). An interval below half that resolution
(floating-point noise such as ±3.5e-08 on 6.857) prints as 0.
"""

from __future__ import annotations

import math

MISSING = "–"


def _decimals(value: float, significant: int) -> int:
    """Decimal places that keep ``significant`` figures of ``value`` (negative: tens, ...)."""
    return significant - 1 - math.floor(math.log10(abs(value)))


def _fixed(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals`` places (negative: to tens, hundreds), commas, no -0."""
    rounded = round(value, decimals) + 0.0
    return f"{rounded:,.{max(decimals, 0)}f}"


def number(value: float) -> str:
    """One figure at its resolution: whole numbers with commas from 1,000, else 4 figures.

    >>> number(1234567.8), number(6.857142), number(-0.00012345), number(0.0)
    ('1,234,568', '6.857', '-0.0001234', '0')
    """
    if not math.isfinite(value):
        return MISSING
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def mean_ci_parts(mean: float, half: float) -> tuple[str, str]:
    """(mean, interval) as text rounded to what they mean (see the module's docstring).

    >>> mean_ci_parts(6.857142, 3.5e-08)
    ('6.857', '0')
    >>> mean_ci_parts(20.0, 4.974e-08)
    ('20', '0')
    >>> mean_ci_parts(6.857142, 0.3512)
    ('6.86', '0.35')
    >>> mean_ci_parts(123456.0, 3456.0)
    ('123,500', '3,500')
    >>> mean_ci_parts(0.0, 0.0123)
    ('0.000', '0.012')
    """
    if not math.isfinite(mean):
        return MISSING, MISSING
    if not math.isfinite(half):
        return number(mean), MISSING
    half = abs(half)
    own = None  # the mean's resolution, as decimal places
    if mean != 0.0:
        own = 0 if abs(mean) >= 1000 else _decimals(mean, 4)
    if half == 0.0 or (own is not None and half < 0.5 * 10.0**-own):
        return number(mean), "0"
    decimals = _decimals(half, 2)
    if own is not None:
        decimals = min(decimals, own)
    return _fixed(mean, decimals), _fixed(half, decimals)


def format_mean_ci(mean: float, half: float) -> str:
    """``mean ± half`` rounded to what they mean.

    >>> format_mean_ci(6.857142, 3.5e-08)
    '6.857 ± 0'
    >>> format_mean_ci(1840.2, 212.7)
    '1,840 ± 210'
    """
    mean_text, half_text = mean_ci_parts(mean, half)
    return f"{mean_text} ± {half_text}"
