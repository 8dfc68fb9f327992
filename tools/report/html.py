"""The local dashboard: one self-contained HTML file, scripts and styles inline, no network.

The charts are drawn by Apache ECharts (Apache-2.0), inlined at report time from its npm
build in node_modules (pinned in package.json), so nothing is fetched when the page opens.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from tools.report.charts import Chart

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
ECHARTS_JS = PROJECT_ROOT / "node_modules" / "echarts" / "dist" / "echarts.common.min.js"


class MissingLibraryError(RuntimeError):
    """The charting library is not installed (`make install` installs it)."""


def _script(text: str) -> str:
    """Text safe inside a <script> element: no `</` can close it early."""
    return text.replace("</", "<\\/")


def render(charts: Sequence[Chart], title: str, subtitle: str, library: Path = ECHARTS_JS) -> str:
    """The page for `charts`, with the library, the data and the drawing script inline."""
    if not library.exists():
        raise MissingLibraryError(f"{library} is missing: run `make install`")
    sections = "\n".join(
        f"<section><h2>{html.escape(chart.title)}</h2>"
        f"<p>{html.escape(chart.note)} Query: docs/queries/{html.escape(chart.query)}</p>"
        f'<div class="chart" id="{html.escape(chart.id)}"></div></section>'
        for chart in charts
    )
    data = json.dumps([chart.as_json() for chart in charts])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{(HERE / 'dashboard.css').read_text(encoding='utf-8')}</style></head>\n"
        f"<body><header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>\n"
        f"<main>\n{sections}\n</main>\n"
        f'<script type="application/json" id="chart-data">{_script(data)}</script>\n'
        f"<script>{_script(library.read_text(encoding='utf-8'))}</script>\n"
        f"<script>{_script((HERE / 'dashboard.js').read_text(encoding='utf-8'))}</script>\n"
        "</body></html>\n"
    )


def write(path: Path, charts: Sequence[Chart], subtitle: str, now: datetime) -> Path:
    """Write the dashboard to `path` and return it."""
    title = f"GitHub Actions telemetry, {now:%Y-%m-%d %H:%M} UTC"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(charts, title, subtitle), encoding="utf-8")
    return path
