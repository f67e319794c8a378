"""The `simcity map` and `simcity report` commands, registered on the main app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from simcity.errors import SimcityError

RunDirArgument = Annotated[
    Path, typer.Argument(metavar="RUN_DIR", help="A folder written by `simcity run --out`.")
]
SizeOption = Annotated[
    str, typer.Option("--size", metavar="WxH", help="Browser window for --screenshot, pixels.")
]


BASEMAP_WARNING = (
    "--basemap {}: the page loads its street tiles and map library from the internet when "
    "opened; offline it shows no streets and no map (leave out --basemap for an offline map)"
)


def parse_size(text: str) -> tuple[int, int]:
    """``"1200x800"`` as (1200, 800); `SimcityError` otherwise."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        width = height = 0
    if not (100 <= width <= 10_000 and 100 <= height <= 20_000):
        raise SimcityError(
            f"not a window size: {text!r}", field="--size", expected="WIDTHxHEIGHT, e.g. 1200x800"
        )
    return width, height


def check_outputs(run_dir: Path, outputs: dict[str, Path | None]) -> None:
    """Refuse, before any work, an output that cannot be a regular file here, two options
    naming one file, or a file of the run itself (``--out RUN_DIR/day.npz``)."""
    from simcity.records.files import check_path_text
    from simcity.records.runfolder import MANIFEST, RUN_FILES
    from simcity.safe_io import check_output_file

    check_path_text(run_dir, field="RUN_DIR")
    seen: dict[Path, str] = {}
    run_files = {(run_dir / name).absolute() for name in (*RUN_FILES, MANIFEST)}
    for option, path in outputs.items():
        if path is None:
            continue
        check_path_text(path, field=option)
        check_output_file(path, expected=f"a path for a regular file ({option})")
        where = path.absolute()
        if where in run_files or (where.exists() and any(_same(where, f) for f in run_files)):
            raise SimcityError(
                "is a file of the run folder: it will not be replaced",
                file=path,
                field=option,
                expected="a new file, e.g. RUN_DIR/map.html",
            )
        if where in seen:
            raise SimcityError(
                f"is also {seen[where]}", file=path, field=option, expected="another file"
            )
        seen[where] = option


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def register(app: typer.Typer) -> None:
    """Add the ``map`` and ``report`` commands to ``app``."""
    from agents.cli.common import parse_hour, print_error, user_errors
    from agents.cli.tables import console

    @app.command("map")
    @user_errors
    def map_command(
        run_dir: RunDirArgument,
        out: Annotated[
            Path | None,
            typer.Option(
                "-o", "--out", help="HTML map to write [default: RUN_DIR/map.html unless --png]."
            ),
        ] = None,
        png: Annotated[
            Path | None,
            typer.Option("--png", help="Also (or only) write a static map, PNG (matplotlib)."),
        ] = None,
        hour_text: Annotated[
            str | None,
            typer.Option(
                "--hour",
                metavar="HH[:MM]",
                help="Local hour the HTML map opens on and the PNG shows, 18 or 18:00 (as "
                "map.html#18:00 writes it); by default the whole day.",
            ),
        ] = None,
        basemap: Annotated[
            str | None,
            typer.Option(
                "--basemap",
                help="carto-light or carto-dark: street tiles under the map (the page then "
                "loads them and the map library from the internet). Default: none, offline.",
            ),
        ] = None,
        screenshot: Annotated[
            Path | None,
            typer.Option("--screenshot", help="Render the HTML map with headless Chromium to PNG."),
        ] = None,
        size: SizeOption = "1200x800",
    ) -> None:
        """Map a run's day: roads by congestion, nodes by monitoring and risk, incidents.

        The HTML map is one self-contained file (no network unless --basemap) with a
        time slider over the day's hours and tooltips; --png draws a static map.
        """
        from agents.viz.maps import BASEMAPS, map_html
        from agents.viz.static_map import figure_png, static_map
        from simcity.records.daylog import read_day_log
        from simcity.records.files import write_atomic, write_atomic_bytes
        from simcity.records.results import read_summary

        if basemap is not None and basemap not in BASEMAPS:
            raise SimcityError(
                f"unknown basemap {basemap!r}", field="--basemap", expected=" | ".join(BASEMAPS)
            )
        hour = parse_hour(hour_text, "--hour") if hour_text is not None else None
        width, height = parse_size(size)
        if out is None and png is None:
            out = run_dir / "map.html"
        check_outputs(run_dir, {"--out": out, "--png": png, "--screenshot": screenshot})
        day = read_day_log(run_dir)
        summary = read_summary(run_dir)
        wrote = []
        if out is not None or screenshot is not None:
            subtitle = f"{summary.get('policy', '?')} policy, {summary.get('date', '')}"
            page = map_html(
                day,
                subtitle=f"{subtitle}, seed {day.seed}",
                start_hour=hour,
                basemap=basemap,
                view_size=(width, height),
            )
            if out is not None:
                write_atomic(out, page)
                wrote.append(f"{out} ({len(page.encode()) / 1e6:.1f} MB)")
                if basemap is not None:
                    print_error("warning:", BASEMAP_WARNING.format(basemap), style="yellow")
            if screenshot is not None:
                from agents.viz.screenshot import fixed_size, run_chromium

                sized = fixed_size(page, width, height)
                run_chromium(sized, width=width, height=height, png=screenshot)
                wrote.append(str(screenshot))
        if png is not None:
            fig = static_map(day, hour_local=hour, title=str(summary.get("title") or ""))
            write_atomic_bytes(png, figure_png(fig, dpi=150))
            wrote.append(str(png))
        console.print("wrote " + ", ".join(wrote))

    @app.command("report")
    @user_errors
    def report_command(
        run_dir: RunDirArgument,
        out: Annotated[
            Path | None,
            typer.Option("-o", "--out", help="Report to write [default: RUN_DIR/report.html]."),
        ] = None,
        train: Annotated[
            Path | None,
            typer.Option(
                "--train",
                help="Training folder whose progress.csv to plot [default: RUN_DIR's, or the "
                "checkpoint's folder when the run used one].",
            ),
        ] = None,
        interactive: Annotated[
            bool,
            typer.Option(
                "--map/--no-map", metavar="", help="Embed the interactive map (about 4 MB and up)."
            ),
        ] = True,
        compare: Annotated[
            list[Path] | None,
            typer.Option(
                "--compare",
                metavar="RUN_DIR",
                help="Another run folder whose units used by hour to draw beside this run's. "
                "Repeat for several.",
            ),
        ] = None,
        pareto: Annotated[
            Path | None,
            typer.Option(
                "--pareto",
                metavar="DIR",
                help="A `simcity pareto --out` folder: add its front and non-dominated points.",
            ),
        ] = None,
        screenshot: Annotated[
            Path | None,
            typer.Option("--screenshot", help="Render the report with headless Chromium to PNG."),
        ] = None,
        size: SizeOption = "1100x4200",
    ) -> None:
        """Report on a run: KPIs through the day, capacity by hour, allocation heatmap,
        training, the map, and a Pareto front with --pareto.

        One self-contained HTML file, figures embedded. Capacity by hour is the mean
        units used by local hour of day beside the grid carbon intensity, with the units
        used in the 6 dirtiest and 6 cleanest hours of each run (--compare adds runs).
        """
        from agents.viz.report import report_html
        from simcity.records.files import write_atomic

        width, height = parse_size(size)
        out = out if out is not None else run_dir / "report.html"
        check_outputs(run_dir, {"--out": out, "--screenshot": screenshot})
        page = report_html(
            run_dir,
            train_dir=train,
            interactive_map=interactive,
            pareto_dir=pareto,
            compare=compare or (),
        )
        write_atomic(out, page)
        wrote = [f"{out} ({len(page.encode()) / 1e6:.1f} MB)"]
        if screenshot is not None:
            from agents.viz.screenshot import run_chromium

            run_chromium(page, width=width, height=height, png=screenshot)
            wrote.append(str(screenshot))
        console.print("wrote " + ", ".join(wrote))
