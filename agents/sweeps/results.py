"""A sweep's results on disk: one row per run, sorted by run id, in CSV and JSON.

Rows carry the run (id, scenario, policy, seed, episodes, overrides), how it went
(attempts, status, failures) and every KPI; only what the runs computed, so the files are
the same byte for byte on every backend and worker count. Floats are written exactly.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.sweeps.sweep import RunResult
from simcity.errors import SimcityError
from simcity.records.files import write_atomic


def result_rows(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One JSON-ready row per run, sorted by run id; KPIs None unless the run is ok."""
    kpi_keys = next((list(r.kpis) for r in results if r.status == "ok"), [])
    rows = []
    for result in sorted(results, key=lambda r: r.spec.run_id):
        spec = result.spec
        rows.append(
            {
                "run": spec.run_id,
                "scenario": spec.scenario,
                "policy": spec.policy,
                "seed": spec.seed,
                "episodes": spec.episodes,
                "overrides": dict(spec.overrides),
                "attempts": result.attempts,
                "status": result.status,
                "failures": list(result.failures),
                "kpis": {k: _finite(result.kpis.get(k)) for k in kpi_keys},
            }
        )
    return rows


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def results_csv(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of `result_rows` as CSV: overrides and KPIs one column each, floats exact."""
    if not rows:
        return ""
    override_keys = list(rows[0]["overrides"])
    kpi_keys = list(rows[0]["kpis"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    head = ["run", "scenario", "policy", "seed", "episodes"]
    writer.writerow([*head, *override_keys, "attempts", "status", "failures", *kpi_keys])
    for row in rows:
        overrides = [_cell(row["overrides"][k]) for k in override_keys]
        kpis = ["" if row["kpis"][k] is None else repr(row["kpis"][k]) for k in kpi_keys]
        meta = [row["attempts"], row["status"], "; ".join(row["failures"])]
        writer.writerow([*(row[k] for k in head), *overrides, *meta, *kpis])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def write_results(out_dir: Path, results: Sequence[RunResult]) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.json`` (one row per run) atomically."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SimcityError("exists and is not a folder", file=out_dir, field="--out")
    rows = result_rows(results)
    csv_path, json_path = out_dir / "results.csv", out_dir / "results.json"
    write_atomic(csv_path, results_csv(rows))
    write_atomic(json_path, json.dumps(rows, indent=2, allow_nan=False) + "\n")
    return csv_path, json_path
