"""The base install (`make run`: no torch) runs, maps and says in one line what to install
for the commands that need torch. Each check runs the CLI in a fresh Python in which
``import torch`` fails as it does where torch is not installed (`NO_TORCH`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# Makes ``import torch`` fail as it does where torch is not installed: ModuleNotFoundError
# naming torch. (``sys.modules["torch"] = None`` would not do: SciPy reads it as a module.)
# A string run in the child only: a module here would be imported by doctest collection.
NO_TORCH = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None

sys.meta_path.insert(0, NoTorch())
"""


def simcity_without_torch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (
        f"{NO_TORCH}\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from agents.cli.main import app\n"
        f"sys.argv = ['simcity', *{list(args)!r}]\n"
        "app()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_the_command_line_imports_no_torch_or_plotting() -> None:
    names = ("torch", "matplotlib", "pydeck", "ray", "scipy", "numba", "simcity.env")
    probe = (
        "import json, sys\nimport agents.cli.main\n"
        f"print(json.dumps([n for n in {list(names)!r} if n in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "args",
    [
        ("run", "tiny", "--quiet", "--policy", "runs/ppo/checkpoint.pt"),
        ("train", "tiny", "--steps", "8", "--out", "train"),
        ("eval", "runs/ppo/checkpoint.pt", "tiny", "--episodes", "2"),
        ("finetune", "checkpoint.pt", "tiny", "--steps", "8", "--out", "tuned"),
        ("compress", "checkpoint.pt", "tiny", "--method", "int8", "--episodes", "0"),
        ("explain", "checkpoint.pt", "tiny", "--at", "08:00"),
        ("calibrate", "--device", "cpu", "--scenario", "tiny", "--out", "devices.toml"),
        ("pareto", "tiny", "--checkpoint", "checkpoint.pt", "--seeds", "1", "--quiet"),
        ("sweep", "sweep.toml", "--quiet", "--workers", "1"),
    ],
)
def test_commands_that_need_torch_say_so_in_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    # A checkpoint file that exists (unreadable, as torch is never reached) and a sweep
    # that plays it, so each command gets as far as it would with torch.
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    sweep = ('name = "light"', 'scenarios = ["tiny"]', 'policies = ["risk", "checkpoint.pt"]')
    (tmp_path / "sweep.toml").write_text("\n".join((*sweep, "seeds = [0]", "")))
    result = simcity_without_torch(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "needs torch" in lines[0] and "pip install -e '.[train]'" in lines[0]


def test_a_baseline_day_runs_and_maps_without_torch(tmp_path: Path) -> None:
    run = simcity_without_torch("run", "tiny", "--quiet", "--out", "day", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    drawn = simcity_without_torch("map", "day", "--png", "map.png", cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    assert (tmp_path / "map.png").stat().st_size > 0
