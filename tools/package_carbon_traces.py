"""Package the bundled carbon traces: copy the raw 2022 CSVs, filling their blank hours.

The raw traces (``../shared/data/carbon``, from HewlettPackard/dc-rl) have rows whose every
value is blank (CAISO: 3 hours). The loader fills a blank ``avg_CI`` by linear
interpolation in time between its neighbours (`simcity.energy.carbon.read_carbon_trace`)
and warns; shipping the traces already filled by that same rule means a run on a bundled
scenario reads the same numbers with no warning. Each filled cell is the loader's value
written with ``repr`` (which reads back to the same float), so dynamics do not change.
Only ``avg_CI`` is filled: the generation-mix columns of those hours stay blank (unknown,
and the simulator never reads them). Every other byte is copied as it is.

Re-runnable: ``python tools/package_carbon_traces.py [RAW_DIR] [OUT_DIR]`` (defaults:
``../shared/data/carbon`` beside the clone, and ``simcity/data/carbon``). Prints what it
filled; ``--check`` exits 1 instead of writing if the packaged files differ.
"""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from pathlib import Path

from simcity.energy.carbon import CarbonTraceWarning, read_carbon_trace

ROOT = Path(__file__).resolve().parents[1]
RAW_DIR = ROOT.parent / "shared" / "data" / "carbon"
OUT_DIR = ROOT / "simcity" / "data" / "carbon"
TRACES = ("CISO_2022_hourly.csv", "ERCO_2022_hourly.csv")
COLUMN, TIME_COLUMN = "avg_CI", "timestamp"
_BLANK = frozenset({"", "nan"})  # as the loader's gap cells


def filled_text(raw: Path) -> tuple[str, list[str]]:
    """The text of ``raw`` with blank ``avg_CI`` cells filled, and the times filled."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CarbonTraceWarning)
        trace = read_carbon_trace(raw, column=COLUMN, time_column=TIME_COLUMN)
    text = raw.read_text(encoding="utf-8")
    if '"' in text:
        raise SystemExit(f"{raw}: quoted CSV cells; this script splits plain rows on commas")
    lines = text.splitlines(keepends=True)
    header = next(csv.reader([lines[0]]))
    i_time, i_value = header.index(TIME_COLUMN), header.index(COLUMN)
    out, filled, k = [lines[0]], [], 0
    for line in lines[1:]:
        body = line.rstrip("\r\n")
        cells = body.split(",")
        if not any(c.strip() for c in cells):
            out.append(line)
            continue
        if cells[i_value].strip().lower() in _BLANK:
            cells[i_value] = repr(float(trace.intensity_g_per_kwh[k]))
            filled.append(cells[i_time])
            line = ",".join(cells) + line[len(body) :]
        out.append(line)
        k += 1
    if k != len(trace.time_s):
        raise SystemExit(f"{raw}: {k} rows, the loader read {len(trace.time_s)}")
    return "".join(out), filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw_dir", nargs="?", type=Path, default=RAW_DIR)
    parser.add_argument("out_dir", nargs="?", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    stale = 0
    for name in TRACES:
        text, filled = filled_text(args.raw_dir / name)
        target = args.out_dir / name
        print(f"{name}: filled {len(filled)} blank {COLUMN} value(s): {', '.join(filled)}")
        if args.check:
            same = target.is_file() and target.read_text(encoding="utf-8") == text
            stale += not same
            print(f"  {target}: {'up to date' if same else 'DIFFERS'}")
        else:
            with open(target, "w", encoding="utf-8", newline="") as f:
                f.write(text)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
