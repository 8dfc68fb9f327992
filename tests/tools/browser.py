"""Headless Chromium for tests: the DOM after scripts ran, a screenshot, and a PNG reader."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio")


def require_browser() -> str:
    """The browser's path; skip with the reason when there is none, fail under CI."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    reason = (
        "no headless Chromium on PATH (`apt-get install chromium`; `make test` does it as root)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _run(browser: str, *arguments: str, home: Path) -> str:
    done = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={home / 'profile'}", *arguments],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
        env={**os.environ, "HOME": str(home)},
    )
    return done.stdout


def dump_dom(browser: str, page: Path, home: Path) -> str:
    """The page's DOM once it loaded and its scripts ran."""
    return _run(browser, "--virtual-time-budget=10000", "--dump-dom", page.as_uri(), home=home)


def screenshot(browser: str, page: Path, out: Path, home: Path, size: str = "1280,2600") -> Path:
    """A PNG of the page at `size` (width,height)."""
    _run(
        browser,
        "--virtual-time-budget=10000",
        f"--window-size={size}",
        f"--screenshot={out}",
        page.as_uri(),
        home=home,
    )
    return out


VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}
)
MARKS = frozenset({"path", "rect", "circle", "polyline", "polygon", "line"})


class ChartMarks(HTMLParser):
    """Counts the SVG shapes drawn inside each `div.chart`, and reads its `data-points`."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, int] = {}
        self.points: dict[str, int] = {}
        self._chart: tuple[str, int] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self._depth += 1
        found = dict(attrs)
        if self._chart is None and tag == "div" and "chart" in (found.get("class") or "").split():
            name = found.get("id") or ""
            self._chart = (name, self._depth)
            self.marks[name] = 0
            self.points[name] = int(found.get("data-points") or 0)
        elif self._chart is not None and tag in MARKS:
            self.marks[self._chart[0]] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self._chart is not None and self._depth == self._chart[1]:
            self._chart = None
        self._depth -= 1


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, chunks, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format"
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(chunks)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for index in range(height):
        start = index * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                nearest = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[i] = (row[i] + nearest) & 0xFF
        rows.append(bytes(row[i] for i in range(stride) if channels == 3 or i % 4 != 3))
        previous = row
    return width, height, rows
