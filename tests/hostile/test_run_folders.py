"""Tampered, truncated and mixed run folders given to `simcity map` and `simcity report`:
every one refused in one line (exit 2), nothing drawn. Each content mutation is tried as
is (the manifest catches it) and re-signed in ``run.json`` (the validators must)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from hostile_outputs import refused, runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from run_folder_cases import CONTENT_CASES, MANIFEST_CASES, Case

from agents.cli.main import app
from simcity.records.daylog import read_day_log

MAP_READS = {"city.json", "day.npz", "incidents.csv", "summary.json", "run.json"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two real runs of `tiny` (seeds 0 and 1), made once for the module."""
    folder = tmp_path_factory.mktemp("runs")
    made = []
    for seed in (0, 1):
        out = folder / f"seed{seed}"
        args = ["run", "tiny", "--seed", str(seed), "--out", str(out), "--quiet"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        made.append(out)
    return made[0], made[1]


def copy_run(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(source, target, symlinks=True)
    return target


def resign(run_dir: Path, name: str) -> None:
    """Make ``run.json`` list ``name`` as it now is: a tamper the manifest cannot see."""
    manifest = json.loads((run_dir / "run.json").read_text())
    data = (run_dir / name).read_bytes()
    manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (run_dir / "run.json").write_text(json.dumps(manifest))


def draws(run_dir: Path, tmp_path: Path) -> dict[str, int]:
    """Exit status of map and report on ``run_dir``; each either draws or writes nothing."""
    codes = {}
    for command, page in (("map", "m.html"), ("report", "r.html")):
        out = tmp_path / page
        extra = ["--no-map"] if command == "report" else []
        result = runner.invoke(app, [command, str(run_dir), "-o", str(out), *extra])
        assert "Traceback" not in result.output and result.exit_code in (0, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert out.exists() == (result.exit_code == 0), result.output
        codes[command] = result.exit_code
    return codes


def test_the_untouched_run_draws(runs: tuple[Path, Path], tmp_path: Path) -> None:
    """The corpus can fail: the same folder, unmutated, maps and reports."""
    assert draws(copy_run(runs[0], tmp_path), tmp_path) == {"map": 0, "report": 0}


@pytest.mark.parametrize("signed", [False, True], ids=["as-is", "re-signed"])
@pytest.mark.parametrize("case", CONTENT_CASES, ids=[f"{c.file}:{c.id}" for c in CONTENT_CASES])
def test_a_tampered_run_file_is_refused(
    case: Case, signed: bool, runs: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir = copy_run(runs[0], tmp_path)
    path = run_dir / case.file
    path.write_bytes(case.mutate(path.read_bytes()))
    if signed:
        resign(run_dir, case.file)
    says = case.says if signed else ""
    commands = [("report", ["--no-map"])]
    if case.file in MAP_READS or not signed:  # map checks every file against the manifest
        commands.append(("map", []))
    for command, extra in commands:
        out = tmp_path / f"{command}.html"
        result = refused([command, str(run_dir), "-o", str(out), *extra], contains=says)
        assert not out.exists()
        if not signed:
            assert case.says in result.output or "not the file the run wrote" in " ".join(
                result.output.split()
            ), result.output


@pytest.mark.parametrize("case", MANIFEST_CASES, ids=[c.id for c in MANIFEST_CASES])
def test_a_tampered_manifest_is_refused(
    case: Case, runs: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir = copy_run(runs[0], tmp_path)
    path = run_dir / case.file
    path.write_bytes(case.mutate(path.read_bytes()))
    for command in ("map", "report"):
        refused([command, str(run_dir), "-o", str(tmp_path / "x.html")], contains=case.says)
    assert not (tmp_path / "x.html").exists()


@pytest.mark.parametrize(
    "names",
    [
        ["steps.csv"],  # the reported mixture: the new steps beside the old day and summary
        ["summary.json"],
        ["day.npz"],
        ["city.json", "day.npz", "incidents.csv"],
        ["steps.csv", "episodes.json", "summary.json"],
    ],
    ids=lambda names: "+".join(names),
)
def test_a_mixture_of_two_runs_is_refused(
    names: list[str], runs: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir = copy_run(runs[0], tmp_path)
    for name in names:
        shutil.copyfile(runs[1] / name, run_dir / name)
    assert draws(run_dir, tmp_path) == {"map": 2, "report": 2}
    refused(["report", str(run_dir), "-o", str(tmp_path / "r.html")], contains="another run")


def test_a_valid_looking_change_is_refused(runs: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir = copy_run(runs[0], tmp_path)
    city = json.loads((run_dir / "city.json").read_text())
    city["nodes"]["lon"][0] += 0.001
    (run_dir / "city.json").write_text(json.dumps(city))
    refused(["map", str(run_dir), "-o", str(tmp_path / "m.html")], contains="city.json")


def special(kind: str, run_dir: Path) -> Path:
    if kind == "day a FIFO":
        (run_dir / "day.npz").unlink()
        os.mkfifo(run_dir / "day.npz")
    elif kind == "city a folder":
        (run_dir / "city.json").unlink()
        (run_dir / "city.json").mkdir()
    elif kind == "summary a device":
        (run_dir / "summary.json").unlink()
        (run_dir / "summary.json").symlink_to("/dev/zero")
    elif kind == "incidents a pseudo-file":
        (run_dir / "incidents.csv").unlink()
        (run_dir / "incidents.csv").symlink_to("/proc/self/environ")
    elif kind == "day huge":
        with (run_dir / "day.npz").open("r+b") as f:
            f.truncate(3 * 1024**3)  # sparse: costs no disk
    elif kind == "city missing":
        (run_dir / "city.json").unlink()
    elif kind == "manifest missing":
        (run_dir / "run.json").unlink()
    elif kind == "folder is a file":
        shutil.rmtree(run_dir)
        run_dir.write_text("not a folder")
    elif kind == "folder missing":
        shutil.rmtree(run_dir)
    elif kind == "folder empty":
        shutil.rmtree(run_dir)
        run_dir.mkdir()
    return run_dir


SPECIAL = [
    ("day a FIFO", "FIFO"),
    ("city a folder", "folder"),
    ("summary a device", "device"),
    ("incidents a pseudo-file", "pseudo"),
    ("day huge", "bytes"),
    ("city missing", "city.json: missing file"),
    ("manifest missing", "run.json: missing file"),
    ("folder is a file", "no such folder"),
    ("folder missing", "no such folder"),
    ("folder empty", "missing file"),
]


@pytest.mark.parametrize(("kind", "says"), SPECIAL, ids=[k for k, _ in SPECIAL])
def test_special_files_in_a_run_folder_are_refused(
    kind: str, says: str, runs: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir = special(kind, copy_run(runs[0], tmp_path))
    for command in ("map", "report"):
        refused([command, str(run_dir), "-o", str(tmp_path / "x.html")], contains=says)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(sorted(MAP_READS - {"run.json"})),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4),
    signed=st.booleans(),
)
def test_random_damage_is_drawn_right_or_refused(
    runs: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    cut: float,
    flips: list[tuple[float, int]],
    signed: bool,
) -> None:
    """Bytes flipped and the file cut anywhere: a refusal, or a folder that still reads back
    as a valid day (then maps draw it); never a traceback."""
    tmp_path = tmp_path_factory.mktemp("random")
    run_dir = copy_run(runs[0], tmp_path)
    data = bytearray((run_dir / name).read_bytes())
    for where, value in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] = value
    (run_dir / name).write_bytes(bytes(data[: max(1, int(cut * len(data)))]))
    if signed:
        resign(run_dir, name)
    codes = draws(run_dir, tmp_path)
    if codes["map"] == 0:
        day = read_day_log(run_dir)  # what was drawn passed every check
        assert day.num_steps > 0 and day.num_nodes > 0


@pytest.mark.parametrize("option", ["--compare", "--train", "--pareto"])
@pytest.mark.parametrize("kind", ["fifo", "device", "tampered"])
def test_the_report_s_other_inputs_are_refused(
    option: str, kind: str, runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Folders named by --compare, --train and --pareto: special or tampered files refused."""
    other = copy_run(runs[1], tmp_path / "other")
    name = {"--compare": "steps.csv", "--train": "progress.csv", "--pareto": "points.csv"}[option]
    target = other / name
    target.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target.symlink_to("/dev/zero")
    elif option == "--train":
        target.write_bytes(b"step,mean_episode_reward\n\x00\x81\n")  # not UTF-8 text
    else:
        target.write_text("episode,hour_local\n0,nan\n")
    out = tmp_path / "r.html"
    refused(["report", str(runs[0]), "-o", str(out), "--no-map", option, str(other)])
    assert not out.exists()
