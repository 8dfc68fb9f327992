"""The benchmark in its tiniest configuration runs, writes every figure and loses nothing."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tools.azurite import PROJECT_ROOT

pytestmark = [pytest.mark.azurite, pytest.mark.slow, pytest.mark.timeout(120)]

FIGURES = [
    "queue put (raw send_message)",
    "frontend full load (202/s)",
    "frontend at 80% load",
    "frontend full load, packing off",
    "frontend at 80% load, packing off",
    "frontend soak at 80% load",
    "queue drain (raw), 1 proc",
    "backend drain, 1 proc",
    "backend drain, 1 proc, ledger off",
    "end to end (deliveries/s)",
]


def test_the_tiniest_benchmark_writes_every_figure_and_loses_nothing(tmp_path: Path) -> None:
    # Given the smallest sizes (a second of load, 100 messages, one Azurite), one backend process
    output = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "tools.bench", "--tiny", "--backend-processes", "1",
        "--soak-s", "3", "--output", str(output),
    ]  # fmt: skip

    # When it runs
    done = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=80, check=False
    )

    # Then it succeeds and the JSON holds every figure, positive, and nothing lost or doubled
    assert done.returncode == 0, done.stderr[-3000:]
    document = json.loads(output.read_text(encoding="utf-8"))
    figures = {figure["name"]: figure for figure in document["figures"]}
    assert [figure["name"] for figure in document["figures"]] == FIGURES
    assert all(math.isfinite(f["per_s"]) and f["per_s"] > 0 for f in figures.values())
    assert figures["backend drain, 1 proc"]["ratio"] > 0
    assert figures["frontend full load (202/s)"]["ratio"] > 0
    at_load = figures["frontend at 80% load"]["details"]
    # one attempt in the tiniest run, checked by a full-load run after it
    assert at_load["attempts"] == 1 and at_load["capacity_after_per_s"] > 0
    assert isinstance(at_load["held"], bool) and at_load["attempts_p99"].startswith("p99 ")
    end_to_end = figures["end to end (deliveries/s)"]["details"]
    assert (end_to_end["accepted"], end_to_end["lost"], end_to_end["doubled"]) == (100, 0, 0)
    assert end_to_end["items_received"] == end_to_end["items_expected"]
    assert document["environment"]["cpu_count"] >= 1
    soak = figures["frontend soak at 80% load"]["details"]
    assert (soak["lost"], soak["doubled"]) == (0, 0)
    assert soak["requests"] > 0
    # paced from a full-load run just before it, and checked by one after it
    assert soak["capacity_before_per_s"] > 0 and soak["capacity_after_per_s"] > 0
    assert soak["target_per_s"] == pytest.approx(0.8 * soak["capacity_before_per_s"], abs=0.1)
    assert isinstance(soak["held"], bool)
    readings = [soak[name] for name in ("rss_mb_start", "rss_mb_warm", "rss_mb_end")]
    assert [reading.count("/") for reading in readings] == [2, 2, 2], readings
