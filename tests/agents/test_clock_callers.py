"""Maps, reports, figures and explanations format local hours with the one clock."""

from __future__ import annotations

import pytest

from simcity.records.results import clock


def test_every_caller_uses_the_one_formatter() -> None:
    pytest.importorskip("torch")
    import agents.green.explain
    import agents.viz.mapframes
    import agents.viz.maps
    import agents.viz.report
    import agents.viz.report_figures

    for module in (
        agents.viz.mapframes,
        agents.viz.maps,
        agents.viz.report,
        agents.viz.report_figures,
        agents.green.explain,
    ):
        assert module.clock is clock, module.__name__
