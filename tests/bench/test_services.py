"""The benchmark's service wrapper: what a service's log says is its own."""

from __future__ import annotations

import sys
from pathlib import Path

from tools.bench.services import Service


def run_to_end(name: str, text: str, workdir: Path) -> Service:
    service = Service(name, [sys.executable, "-c", f"print({text!r})"], workdir, {})
    service.process.wait(timeout=30)
    service.stop()
    return service


def test_a_service_reads_back_only_its_own_lines_of_a_shared_log(tmp_path: Path) -> None:
    # Given a first backend that logged that its worker started
    first = run_to_end("backend", "worker 1 started on queue q", tmp_path)

    # When a second service of the same name starts and logs something else
    second = run_to_end("backend", "still starting", tmp_path)

    # Then the second does not see the first's line (a figure would start its clock too early),
    # while the file keeps both for whoever reads the run's logs
    assert "started on queue" in first.log_text()
    assert second.log_text() == "still starting\n"
    assert "started on queue" in second.log_path.read_text(encoding="utf-8")
