"""The bundled real cities from the command line, and maps of their real streets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agents.cli.main import app
from agents.viz.mapframes import halfway, incident_positions, map_frames, road_paths
from agents.viz.maps import map_html
from agents.viz.static_map import static_map
from simcity.records.daylog import read_day_log

runner = CliRunner()


@pytest.fixture(scope="module")
def helsinki_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("helsinki") / "run"
    result = runner.invoke(
        # Day 7: helsinki's streets are lightly loaded, and this day has accidents to draw.
        app,
        ["run", "helsinki", "--policy", "risk", "--seed", "7", "--out", str(out), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("name", ["helsinki", "coquimbo"])
def test_real_city_validates(name: str) -> None:
    result = runner.invoke(app, ["validate", name])
    assert result.exit_code == 0, result.output
    assert f"ok {name}" in result.output


def test_coquimbo_runs_a_day(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", "coquimbo", "--policy", "uniform", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    steps = (out / "steps.csv").read_text().splitlines()
    assert len(steps) == 1 + 96
    day = read_day_log(out)
    assert day.num_nodes == 1446 and day.link_geometry is not None


def test_helsinki_day_keeps_street_geometry(helsinki_run: Path) -> None:
    city = json.loads((helsinki_run / "city.json").read_text())
    geometry = city["links"]["geometry"]
    assert len(geometry) == len(city["links"]["tail"]) == 289
    day = read_day_log(helsinki_run)
    assert day.link_geometry is not None and day.num_steps == 96
    for k in (0, 100, 288):
        tail, head = day.link_tail[k], day.link_head[k]
        np.testing.assert_allclose(
            day.link_geometry[k][0], [day.lon[tail], day.lat[tail]], atol=1e-6
        )
        np.testing.assert_allclose(
            day.link_geometry[k][-1], [day.lon[head], day.lat[head]], atol=1e-6
        )


def test_maps_draw_streets_along_their_points(helsinki_run: Path) -> None:
    day = read_day_log(helsinki_run)
    frames = map_frames(day)
    paths = road_paths(day)
    assert paths is not None and len(paths) == len(frames.road_tail)
    bent = next(r for r, p in enumerate(paths) if len(p) > 2)
    tail, head = frames.road_tail[bent], frames.road_head[bent]
    assert {tuple(np.round(paths[bent][0], 6)), tuple(np.round(paths[bent][-1], 6))} == {
        (round(day.lon[tail], 6), round(day.lat[tail], 6)),
        (round(day.lon[head], 6), round(day.lat[head], 6)),
    }
    page = map_html(day)
    assert '"@@type":"PathLayer"' in page and '"@@type":"LineLayer"' not in page
    inner = [round(float(x), 6) for x in paths[bent][1]]
    assert json.dumps(inner).replace(" ", "") in page.replace(" ", "")
    accidents = np.flatnonzero(day.incidents["link"] >= 0)
    assert accidents.size > 0
    lon, lat = incident_positions(day)
    link = int(day.incidents["link"][accidents[0]])
    assert (lon[accidents[0]], lat[accidents[0]]) == halfway(day.link_geometry[link])
    fig = static_map(day)
    lines = fig.axes[0].collections[0]
    assert max(len(p) for p in lines.get_segments()) > 2  # polylines, not two-point segments


def test_old_run_folder_without_geometry_still_reads(helsinki_run: Path, tmp_path: Path) -> None:
    from simcity.records.runfolder import write_run_folder

    old = tmp_path / "old"
    files = {name: (helsinki_run / name).read_bytes() for name in ("day.npz", "incidents.csv")}
    city = json.loads((helsinki_run / "city.json").read_text())
    del city["links"]["geometry"]
    files["city.json"] = json.dumps(city).encode()
    write_run_folder(old, files)  # a whole run folder (manifest), its city without geometry
    day = read_day_log(old)
    assert day.link_geometry is None and road_paths(day) is None
    page = map_html(day)
    assert '"@@type":"LineLayer"' in page and '"@@type":"PathLayer"' not in page
    assert all(len(p) == 2 for p in static_map(day).axes[0].collections[0].get_segments())


@pytest.mark.parametrize(
    "geometry",
    [[[[0, 0], [1, 1]]], "lines", [[[0, 0]]] * 289, [[[500, 0], [1, 1]]] * 289],
)
def test_bad_geometry_in_a_run_folder_is_a_clear_error(
    helsinki_run: Path, tmp_path: Path, geometry: object
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("day.npz", "incidents.csv"):
        (bad / name).write_bytes((helsinki_run / name).read_bytes())
    city = json.loads((helsinki_run / "city.json").read_text())
    city["links"]["geometry"] = geometry
    (bad / "city.json").write_text(json.dumps(city))
    result = runner.invoke(app, ["map", str(bad), "--out", str(tmp_path / "m.html")])
    assert result.exit_code == 2, result.output
    assert "links.geometry" in result.output and "Traceback" not in result.output


def test_bad_extract_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "bad.osm.pbf").write_bytes(b"not an extract" * 20)
    (tmp_path / "town.toml").write_text(
        'name = "town"\n[city]\nsource = "osm"\npath = "bad.osm.pbf"\n'
    )
    result = runner.invoke(app, ["validate", str(tmp_path / "town.toml")])
    assert result.exit_code == 2, result.output
    assert "bad.osm.pbf" in result.output and "not a readable OSM file" in result.output
    assert "Traceback" not in result.output
