"""Tables the `simcity compress`, `simcity explain` and `simcity calibrate` commands print."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _fit(table: Table) -> Table:
    """``table`` sized for the console so that no number is folded (`keep_words`)."""
    from agents.cli.tables import console, keep_words

    return keep_words(table, console.width)


def gpu_calibration_table(result: Any) -> Table:
    """NVML's whole-board joules per policy decision and per analytics call."""
    table = Table(title=f"{result.gpu_name}: measured with NVML", title_justify="left")
    for column in ("call", "FLOP", "J per call", "s per call", "board W"):
        table.add_column(column, justify="right", overflow="fold")
    for label, measured, flop in (
        ("policy decision", result.policy, result.policy_flop),
        ("perception call", result.perception, result.perception_flop),
    ):
        table.add_row(
            label,
            f"{flop:.4g}",
            f"{measured.joules_per_call:.4g}",
            f"{measured.seconds_per_call:.4g}",
            f"{measured.power_w:.4g}",
        )
    return _fit(table)


def cpu_calibration_table(cpu: Any) -> Table:
    """Measured latency per call and its energy above idle (time x measured or stated W)."""
    table = Table(
        title=f"{cpu.cpu_name}: latency measured, power {cpu.profile.provenance}",
        title_justify="left",
        caption=f"power: {cpu.power}",
        caption_justify="left",
    )
    for column in ("call", "threads", "FLOP", "median ms", "runs", "W above idle", "J per call"):
        table.add_column(column, justify="right", overflow="fold")
    for label, threads, latency, flop, energy in (
        ("policy decision", 1, cpu.policy, cpu.policy_flop, cpu.policy_energy),
        ("analytics call", cpu.threads, cpu.perception, cpu.perception_flop, cpu.perception_energy),
    ):
        table.add_row(
            label,
            str(threads),
            f"{flop:.4g}",
            f"{latency.median_s * 1e3:.4g}",
            str(latency.runs),
            f"{energy.power_w:.4g}",
            f"{energy.joules:.4g}",
        )
    return _fit(table)


def compression_table(report: dict[str, Any]) -> Table:
    """Original vs compressed: size, cost, latency, energy and service KPIs."""
    from agents.cli.tables import number

    original, compressed = report["original"], report["compressed"]
    device = original["billed_device"]
    table = Table(
        title=f"{report['method']} on {report['scenario']} ({report['num_nodes']} nodes)",
        title_justify="left",
    )
    for column in ("", "original", report["method"], "ratio"):
        table.add_column(column, justify="right" if column else "left", overflow="fold")
    rows: list[tuple[str, float, float]] = [
        ("parameters", original["num_params"], compressed["num_params"]),
        ("stored weights KB", original["weight_bytes"] / 1e3, compressed["weight_bytes"] / 1e3),
        ("FLOP / decision", original["flop_per_decision"], compressed["flop_per_decision"]),
        (
            "int8 op / decision",
            original["int8_op_per_decision"],
            compressed["int8_op_per_decision"],
        ),
        (
            f"billed FLOP ({device})",
            original["billed_flop_per_decision"],
            compressed["billed_flop_per_decision"],
        ),
        ("CPU latency ms (measured)", original["cpu_latency_ms"], compressed["cpu_latency_ms"]),
        (
            "energy µJ / decision, where it runs",
            original["energy_per_decision"]["joules"] * 1e6,
            compressed["energy_per_decision"]["joules"] * 1e6,
        ),
        (
            f"energy µJ / decision on {original['cpu_energy_per_decision']['device']}",
            original["cpu_energy_per_decision"]["joules"] * 1e6,
            compressed["cpu_energy_per_decision"]["joules"] * 1e6,
        ),
    ]
    kpis = (
        ("service_cost", "service cost $ (damage + error)"),
        ("detection_rate", "detection rate"),
        ("compute_policy_kwh", "policy kWh / day"),
        ("money", "total cost $"),
    )
    if original["kpis"]:
        rows += [
            (label, original["kpis"][k]["mean"], compressed["kpis"][k]["mean"]) for k, label in kpis
        ]
    for label, a, b in rows:
        ratio = f"{b / a:.3f}" if a else "–"
        table.add_row(label, number(a), number(b), ratio)
    return _fit(table)


def energy_table(report: dict[str, Any]) -> Table:
    """Energy and carbon of one decision as time x power: where each policy runs, and on the
    CPU at its measured latency; how each time was found and the figures' provenance."""
    from agents.cli.tables import number

    table = Table(title="per decision: time x power x PUE", title_justify="left")
    columns = ("policy", "device", "time", "ms", "W", "µJ", "µgCO2", "provenance")
    for column in columns:
        left = column in ("policy", "device")
        table.add_column(column, justify="left" if left else "right", overflow="fold")
    seen = set()
    for label in ("original", "compressed"):
        facts = report[label]
        for key in ("energy_per_decision", "cpu_energy_per_decision"):
            energy = facts[key]
            row = (
                facts["name"],
                energy["device"],
                energy["latency"],
                number(energy["seconds"] * 1e3),
                number(energy["power_w"]),
                number(energy["joules"] * 1e6),
                number(energy["gco2"] * 1e6),
                energy["provenance"],
            )
            if row not in seen:  # int8: where it runs is the CPU
                seen.add(row)
                table.add_row(*row)
    return _fit(table)


def node_tables(node: Any, time_local: str) -> list[Table]:
    """One explained node in two tables: its top neighbours by attention, then its top
    features by attribution (one table each, so no row pairs unrelated things)."""
    title = (
        f"{time_local} node {node.node} ({node.lon:.5f}, {node.lat:.5f}): "
        f"{node.units:.3g} units, {node.share:.1%} of the budget"
    )
    attention = Table(title=f"{title}; whom it attends to", title_justify="left")
    for column in ("attends to", "weight", "min away"):
        left = column == "attends to"
        attention.add_column(column, justify="left" if left else "right", overflow="fold")
    for link in node.attention[:8]:
        attention.add_row(
            f"node {link.neighbour}", f"{link.weight:.3f}", f"{link.distance_min:.2f}"
        )
    features = Table(
        title=f"node {node.node}: what drove its share (IG completeness gap {node.delta:.2g})",
        title_justify="left",
    )
    for column in ("feature", "IG", "IG at node", "ablation"):
        left = column == "feature"
        features.add_column(column, justify="left" if left else "right", overflow="fold")
    for feature in node.features[:8]:
        features.add_row(
            feature.feature + (" (global)" if feature.kind == "global" else ""),
            f"{feature.attribution:+.3g}",
            f"{feature.own:+.3g}" if feature.kind == "node" else "",
            f"{feature.ablation:+.3g}",
        )
    return [_fit(attention), _fit(features)]
