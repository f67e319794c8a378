"""Size and render time of the interactive map, against a blank page and a small city.

Not a test: prints file sizes, build times and headless-Chromium wall times (median of
``--repeat`` runs, SwiftShader software WebGL, a screenshot at 1200 x 800), and each
time's ratio to the blank page's (Chromium's own start-up and the pydeck bundle's
parse, the floor any map pays). Needs run folders from ``simcity run --out``:

    simcity run metro --out runs/metro && simcity run tiny --out runs/tiny
    python bench/map_render.py runs/metro runs/tiny
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from agents.viz.maps import map_html
from agents.viz.screenshot import fixed_size, run_chromium
from simcity.records.daylog import read_day_log

WIDTH, HEIGHT = 1200, 800
BLANK = "<!DOCTYPE html><html><body style='background:#0b1020'></body></html>"


def chromium_s(page: str, repeat: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            started = time.perf_counter()
            run_chromium(page, width=WIDTH, height=HEIGHT, png=Path(tmp) / "shot.png")
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    blank_s = chromium_s(BLANK, args.repeat)
    print(f"{'page':<28} {'nodes':>6} {'MB':>6} {'build s':>8} {'chromium s':>11} {'/ blank':>8}")
    print(f"{'blank page':<28} {'':>6} {'':>6} {'':>8} {blank_s:>11.2f} {1.0:>8.2f}")
    for run in args.runs:
        day = read_day_log(run)
        started = time.perf_counter()
        page = map_html(day)
        build_s = time.perf_counter() - started
        render_s = chromium_s(fixed_size(page, WIDTH, HEIGHT), args.repeat)
        size_mb = len(page.encode()) / 1e6
        print(
            f"{run!s:<28} {day.num_nodes:>6} {size_mb:>6.2f} {build_s:>8.2f} "
            f"{render_s:>11.2f} {render_s / blank_s:>8.2f}"
        )


if __name__ == "__main__":
    main()
