"""Checks of a rendered HTML page: what it fetches, what markup is live, Chromium present."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from agents.viz.screenshot import find_chromium


def need_chromium() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Chromium: .ci/run installs the Debian package")
        pytest.skip("no Chromium on PATH")


class Tags(HTMLParser):
    """Start tags outside scripts and styles (the parser keeps their text raw)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def network_references(page: str) -> list[str]:
    """Every tag attribute or CSS rule of ``page`` (and its srcdoc frames) that fetches."""
    remote = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
    found = []
    tags = Tags(page).tags
    for tag, attrs in tags:
        for name in ("src", "href", "srcset", "poster", "action", "data", "background"):
            if remote.match(attrs.get(name, "")):
                found.append(f"<{tag} {name}={attrs[name]}>")
        if tag == "iframe" and "srcdoc" in attrs:
            found += network_references(attrs["srcdoc"])
    css = re.findall(r"<style[^>]*>(.*?)</style>", page, re.DOTALL | re.IGNORECASE)
    css += [attrs.get("style", "") for _, attrs in tags]
    found += [c[:80] for c in css if re.search(r"url\(\s*['\"]?(?:https?:)?//|@import", c)]
    return found


def page_requests(net_log: Path) -> list[str]:
    """URLs the page itself asked for (not the browser's own housekeeping), from a NetLog."""
    events = json.loads(net_log.read_text())["events"]
    urls = set()
    for event in events:
        params = event.get("params", {})
        url, key = params.get("url", ""), str(params.get("network_isolation_key", ""))
        if url and "file://" in key and not url.startswith(("file:", "data:")):
            urls.add(url)
    return sorted(urls)


def live_markup(page: str) -> list[str]:
    """Elements or handlers that the malicious names would have made live."""
    tags = Tags(page).tags
    bad = [f"<{t}>" for t, _ in tags if t in ("img", "svg", "object", "embed")]
    bad += [f"<{t} {k}>" for t, a in tags for k in a if k.startswith("on")]
    return bad
