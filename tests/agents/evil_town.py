"""A tiny town whose node names are hostile markup, and a run of it, for the map tests."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agents.cli.main import app
from simcity.config.scenario import bundled_scenarios

TINY = bundled_scenarios()["tiny"]
EVIL = {
    "0": "<script>document.title='pwned'</script>",
    "5": '"><img src=x onerror=alert(1)>',
    "6": "<img src=x onerror=\"document.title='pwned'\">",
    "9": "<script>",
    "15": "Main & 1st $5 \\ {tip}",
}


def scenario_text(names: dict[str, str], title: str = "Evil <script>alert(1)</script> town") -> str:
    """Tiny with named nodes and frequent incidents (so the map has some to show)."""
    lines = [f"base = {json.dumps(str(TINY))}", 'name = "evil"', f"title = {json.dumps(title)}"]
    lines += ["[incidents]", "accident_per_mveh_km = 300", "pollution_per_h = 0.3"]
    lines += ["[node_names]", *(f"{k} = {json.dumps(v)}" for k, v in names.items())]
    return "\n".join(lines) + "\n"


def run_evil_town(folder: Path) -> Path:
    """Run the evil town for a day into ``folder / "run"`` and return that run folder."""
    (folder / "evil.toml").write_text(scenario_text(EVIL))
    out = folder / "run"
    args = ["run", str(folder / "evil.toml"), "--seed", "1", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out
