"""Every table the command line prints, rendered at 80 columns: no number is ever cut.

Each table-producing function runs on figures as wide as real ones get (millions of
dollars, intervals of float noise, the longest policy names) into a recording console
80 columns wide. The test fails on an ellipsis anywhere, or on a figure of a cell that
does not appear whole on one line of the output (folded or cut).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from agents.cli import green_tables, tables
from agents.policies.baselines import BASELINES
from agents.training.evaluate import KPIS

WIDTH = 80
FIGURE = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?$")


def _console() -> Console:
    return Console(width=WIDTH, record=True, color_system=None, force_terminal=False)


def _cells(table: Table) -> Iterator[str]:
    for column in table.columns:
        for cell in column.cells:
            yield str(cell)


def _check(text: str, cells: list[str]) -> None:
    assert "…" not in text, text
    lines = text.splitlines()
    assert all(len(line) <= WIDTH for line in lines)
    for cell in cells:
        for token in cell.split():
            if FIGURE.match(token):
                assert any(token in line for line in lines), (token, text)


def _render_tables(made: list[Table]) -> None:
    console = _console()
    for table in made:
        console.print(table, crop=False)
    _check(console.export_text(), [c for t in made for c in _cells(t)])


def _kpis(scale: float) -> dict[str, dict[str, float]]:
    return {key: {"mean": 1234567.891 * scale, "ci95": 123456.7 * scale} for key, _ in KPIS}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Console:
    console = _console()
    monkeypatch.setattr(tables, "console", console)
    made: list[Table] = []
    original = console.print

    def keep(*objects: Any, **kwargs: Any) -> None:
        made.extend(o for o in objects if isinstance(o, Table))
        original(*objects, **kwargs, crop=False)

    monkeypatch.setattr(console, "print", keep)
    console.made = made  # type: ignore[attr-defined]
    return console


def _check_recorded(console: Console) -> None:
    cells = [c for t in console.made for c in _cells(t)]  # type: ignore[attr-defined]
    assert cells
    _check(console.export_text(), cells)


def test_eval_table_of_every_policy_fits_80_columns(recorded: Console) -> None:
    stats = {name: _kpis(1.0) for name in ("trained", *BASELINES)}
    stats["risk"] = {key: {"mean": 6.857142, "ci95": 3.5e-08} for key, _ in KPIS}
    made = tables.eval_tables("downtown: 10 test days, mean ± 95%", stats)
    assert len(made) > 1  # eight KPIs do not fit beside the names in 80 columns
    _render_tables(made)
    text = _render_text(made)
    assert (
        "6.857 ± 0" in text
        and "3.5e-08" not in text
        and "1,230,000" in text
        and "120,000" in text
        and "paced_carbon" in text
    )


def _render_text(made: list[Table]) -> str:
    console = _console()
    for table in made:
        console.print(table, crop=False)
    return console.export_text()


def test_monitoring_kpis_and_compute_use_fit_80_columns(recorded: Console) -> None:
    tables.print_monitoring("paced_carbon", _kpis(1.0), episodes=10)
    tables.print_monitoring("risk", _kpis(1e-9), episodes=1)
    hourly = [
        {
            "hour": h,
            "demand_veh_h": 1_234_567.0,
            "travel_time_veh_h": 9_876_543.0,
            "travel_time_index": 1.234,
            "mean_vc": 0.987,
            "load_mw": 12_345.6,
            "peak_load_mw": 23_456.7,
            "carbon_g_per_kwh": 812.0,
        }
        for h in range(24)
    ]
    summary = {
        "num_nodes": 12_345,
        "num_links": 45_678,
        "num_zones": 1_234,
        "travel_time_veh_h": 98_765_432.0,
        "mean_vc": 0.5,
        "mean_travel_time_index": 1.1,
        "peak_load_mw": 23_456.7,
        "energy_mwh": 345_678.9,
        "mean_carbon_g_per_kwh": 412.3,
        "emissions_t": 123_456.7,
        "wall_s": 1234.5,
    }
    tables.print_kpis(
        "A very long scenario title that is longer than the console (seed 0)", hourly, summary
    )
    infos = [
        {
            "hour_local": h / 4,
            "units_used": 12.3456789,
            "cost_energy": 1.0,
            "cost_carbon": 0.5,
            "cost_total": 1e6,
        }
        for h in range(96)
    ]
    tables.print_compute_use(infos, budget_units=20.0, episodes=1)
    _check_recorded(recorded)


def test_finetune_and_scenario_tables_fit_80_columns(recorded: Console) -> None:
    money = {"mean": 12_345_678.9, "ci95": 4.974e-08}
    doc = {
        "scenario": "sioux_falls",
        "kpis": {name: {"money": money, "damage": {"mean": 9_876_543.2}} for name in BASELINES},
    }
    table = tables.finetune_table(doc, episodes=10)
    _render_tables([table])
    assert "12,345,679 ± 0" in _render_text([table]) and "+-" not in _render_text([table])
    rows = [("sioux_falls_with_a_long_name", "A long title " * 6, "tntp:SiouxFalls", "288 x 5 min")]
    _render_tables([tables.scenarios_table(rows)])


def _energy(device: str, joules: float) -> dict[str, Any]:
    return {
        "device": device,
        "latency": "measured",
        "seconds": 0.001234567,
        "power_w": 345.678,
        "joules": joules,
        "gco2": joules * 0.1234,
        "provenance": "datasheet",
    }


def test_green_tables_fit_80_columns(recorded: Console) -> None:
    facts = {
        "name": "checkpoint_with_long_name",
        "billed_device": "nvidia_h100_sxm",
        "num_params": 123_456_789,
        "weight_bytes": 987_654_321,
        "flop_per_decision": 1.234e12,
        "int8_op_per_decision": 5.678e11,
        "billed_flop_per_decision": 1.234e12,
        "cpu_latency_ms": 123.456,
        "energy_per_decision": _energy("nvidia_h100_sxm", 0.0123),
        "cpu_energy_per_decision": _energy("epyc_9654_2s", 1.234),
        "kpis": {
            k: {"mean": 1_234_567.0}
            for k in ("service_cost", "detection_rate", "compute_policy_kwh", "money")
        },
    }
    report = {
        "method": "distill",
        "scenario": "sioux_falls",
        "num_nodes": 24,
        "original": facts,
        "compressed": {**facts, "name": "distilled"},
    }
    latency = SimpleNamespace(median_s=0.00123456, runs=12345)
    energy = SimpleNamespace(power_w=123.456, joules=0.123456)
    cpu = SimpleNamespace(
        cpu_name="AMD EPYC 9654 96-Core Processor",
        profile=SimpleNamespace(provenance="calibrated"),
        power="stated 280 W per socket",
        threads=192,
        policy=latency,
        perception=latency,
        policy_flop=1.234e9,
        perception_flop=8.765e12,
        policy_energy=energy,
        perception_energy=energy,
    )
    measured = SimpleNamespace(
        joules_per_call=0.123456, seconds_per_call=0.00123456, power_w=456.789
    )
    gpu = SimpleNamespace(
        gpu_name="NVIDIA H100 80GB HBM3",
        policy=measured,
        perception=measured,
        policy_flop=1.234e9,
        perception_flop=8.765e12,
    )
    link = SimpleNamespace(neighbour=12345, weight=0.123456, distance_min=123.456)
    feature = SimpleNamespace(
        feature="carbon_price_x_weight",
        kind="global",
        attribution=-0.0123456,
        own=0.1,
        ablation=-0.123,
    )
    node = SimpleNamespace(
        node=12345,
        lon=-96.123456,
        lat=43.123456,
        units=12.3456,
        share=0.1234,
        delta=1e-7,
        attention=[link] * 8,
        features=[feature] * 8,
    )
    _render_tables(
        [
            green_tables.compression_table(report),
            green_tables.energy_table(report),
            green_tables.cpu_calibration_table(cpu),
            green_tables.gpu_calibration_table(gpu),
            *green_tables.node_tables(node, "18:00"),
        ]
    )
    # Neighbours and features are separate tables: no row pairs a neighbour with a feature.
    attention, features = green_tables.node_tables(node, "18:00")
    assert [c.header for c in attention.columns] == ["attends to", "weight", "min away"]
    assert [c.header for c in features.columns] == ["feature", "IG", "IG at node", "ablation"]
