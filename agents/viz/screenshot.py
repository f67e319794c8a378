"""Headless Chromium: screenshots of the map and report pages, and their live DOM.

Uses the system's Chromium (Debian package ``chromium``) with software WebGL
(SwiftShader), a fresh profile and no network: nothing is downloaded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from simcity.errors import SimcityError
from simcity.records.files import write_atomic_bytes

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
_FULL_WINDOW = re.compile(r"(#deck-container\s*\{\s*)width:\s*100vw;\s*height:\s*100vh;")


def find_chromium() -> str | None:
    """Path of a Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def fixed_size(page: str, width: int, height: int) -> str:
    """The page with the map container at ``width`` x ``height`` pixels, not the window's.

    Headless windows size ``100vh`` unreliably; fixed pixels put every node where
    `agents.viz.maps.project` says.
    """
    return _FULL_WINDOW.sub(rf"\g<1>width: {width}px; height: {height}px;", page)


def run_chromium(
    page: str,
    *,
    width: int,
    height: int,
    png: Path | None = None,
    dump_dom: bool = False,
    net_log: Path | None = None,
    fragment: str = "",
    budget_ms: int = 15_000,
    timeout_s: float = 300.0,
) -> str:
    """Load ``page`` in headless Chromium; write a ``png`` screenshot or return the DOM.

    ``budget_ms`` of virtual time lets the page's scripts and WebGL finish first.
    ``net_log`` records every request the browser makes (Chromium's NetLog JSON).
    ``fragment`` is added to the page's URL (``#08:00`` opens the map on 08:00).
    """
    browser = find_chromium()
    if browser is None:
        raise SimcityError(
            "no Chromium browser found on PATH",
            field="--screenshot",
            expected="the Debian package chromium (apt-get install chromium)",
        )
    with tempfile.TemporaryDirectory(prefix="simcity-chromium-") as tmp:
        source = Path(tmp) / "page.html"
        source.write_text(page, encoding="utf-8")
        args = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-unsafe-swiftshader",
            "--use-angle=swiftshader",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={width},{height}",
            f"--virtual-time-budget={budget_ms}",
        ]
        if net_log is not None:
            args.append(f"--log-net-log={net_log}")
        shot = Path(tmp) / "shot.png"  # then moved to png atomically: never a FIFO or device
        if png is not None:
            args.append(f"--screenshot={shot}")
        if dump_dom:
            args.append("--dump-dom")
        args.append(source.as_uri() + (f"#{fragment}" if fragment else ""))
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise SimcityError(
                f"Chromium took longer than {timeout_s:.0f} s", file=browser
            ) from None
        if done.returncode != 0 or (png is not None and not shot.is_file()):
            tail = done.stderr.strip().splitlines()[-3:]
            raise SimcityError(
                f"Chromium failed ({done.returncode}): {' / '.join(tail)}", file=browser
            )
        if png is not None:
            write_atomic_bytes(png, shot.read_bytes())
    return done.stdout
