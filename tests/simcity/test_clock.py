"""One clock formatter for local hours: HH:MM to the nearest minute, never a 60th minute."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from simcity.records.results import clock

HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def test_the_last_seconds_of_an_hour_round_up_to_the_next() -> None:
    assert clock(17.9999) == "18:00"  # truncating minutes alone would say 17:60
    assert clock(23.9999) == "00:00"  # and past midnight it wraps
    assert clock(17.5) == "17:30" and clock(0.0) == "00:00" and clock(9.0 + 59 / 60) == "09:59"
    assert clock(8.25 + 24.0) == "08:15"


@given(st.floats(min_value=-48.0, max_value=48.0, allow_nan=False))
def test_every_hour_reads_as_the_nearest_minute(hour: float) -> None:
    text = clock(hour)
    assert HH_MM.match(text), text
    hours, minutes = map(int, text.split(":"))
    error_min = (hours * 60 + minutes - hour * 60.0) % 1440.0
    assert min(error_min, 1440.0 - error_min) <= 0.5 + 1e-9
