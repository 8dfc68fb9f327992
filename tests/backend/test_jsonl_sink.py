"""The local JSON Lines sink: one line per event, in the shape App Insights receives."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

from backend.sinks.jsonl import JsonlSink
from backend.telemetry.item import TelemetryItem


def item(name: str, index: int = 0) -> TelemetryItem:
    return TelemetryItem(
        name=name,
        timestamp=datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        properties={"index": str(index)},
        measurements={"duration_seconds": 270.0},
        operation_id="op",
        parent_id="parent",
        item_id="id",
    )


def test_each_item_is_one_json_line(tmp_path: Path) -> None:
    path = tmp_path / "var" / "telemetry.jsonl"
    sink = JsonlSink(path)

    result = sink.export([item("WorkflowRun"), item("WorkflowJob")])
    sink.close()

    assert result.accepted == (0, 1)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "name": name,
            "time": "2024-03-05T10:04:30.000000Z",
            "operation_id": "op",
            "parent_id": "parent",
            "properties": {"index": "0"},
            "measurements": {"duration_seconds": 270.0},
        }
        for name in ("WorkflowRun", "WorkflowJob")
    ]


def test_an_unwritable_file_makes_the_batch_retryable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    sink = JsonlSink(blocker / "telemetry.jsonl")

    result = sink.export([item("WorkflowRun")])

    assert (result.accepted, result.retryable) == ((), (0,))


def _append(path: str, writer: int) -> None:
    sink = JsonlSink(Path(path))
    for batch in range(20):
        sink.export([item(f"W{writer}", batch * 10 + i) for i in range(10)])
    sink.close()


def test_several_processes_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_append, args=(str(path), w)) for w in range(3)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=60)

    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 600
    for writer in range(3):
        mine = [int(r["properties"]["index"]) for r in records if r["name"] == f"W{writer}"]
        assert mine == list(range(200))
