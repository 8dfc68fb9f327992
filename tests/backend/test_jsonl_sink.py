"""The local JSON Lines sink: one line per event, in the shape App Insights receives."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

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
    sink = JsonlSink(path, now=lambda: datetime(2024, 3, 5, 11, 0, 0, tzinfo=UTC))

    result = sink.export([item("WorkflowRun"), item("WorkflowJob")])
    sink.close()

    assert result.accepted == (0, 1)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "name": name,
            "time": "2024-03-05T10:04:30.000000Z",
            "operation_id": "op",
            "operation_name": "",
            "parent_id": "parent",
            "properties": {"index": "0", "event_time": "2024-03-05T10:04:30.000000Z"},
            "measurements": {"duration_seconds": 270.0},
        }
        for name in ("WorkflowRun", "WorkflowJob")
    ]


def test_a_late_item_is_written_at_export_time_as_app_insights_would_receive_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "telemetry.jsonl"
    sink = JsonlSink(path, now=lambda: datetime(2024, 3, 8, 10, 4, 30, tzinfo=UTC))

    sink.export([item("WorkflowRun")])
    sink.close()

    [record] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert record["time"] == "2024-03-08T10:04:30.000000Z"
    assert record["properties"]["event_time"] == "2024-03-05T10:04:30.000000Z"
    assert record["measurements"]["late_seconds"] == 3 * 86400.0


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


def test_an_item_that_cannot_be_encoded_is_rejected_and_the_rest_written(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl"
    sink = JsonlSink(path)
    broken = TelemetryItem(
        name="WorkflowJob",
        timestamp=datetime(2024, 3, 5, 10, 4, 30, tzinfo=UTC),
        properties={"job_name": "build \ud800"},
    )

    result = sink.export([item("WorkflowRun"), broken])
    sink.close()

    assert (result.accepted, result.retryable) == ((0,), ())
    assert [(r.index, r.reason) for r in result.rejected] == [
        (1, "not serialisable: UnicodeEncodeError")
    ]
    assert [json.loads(line)["name"] for line in path.read_text().splitlines()] == ["WorkflowRun"]


def test_a_short_write_then_an_error_leaves_no_partial_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "telemetry.jsonl"
    sink = JsonlSink(path)
    sink.export([item("WorkflowRun", 0)])
    real_write = os.write
    calls: list[int] = []

    def disk_filling_up(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_filling_up)
    failed = sink.export([item("WorkflowJob", 1), item("WorkflowJob", 2)])
    monkeypatch.setattr(os, "write", real_write)
    retried = sink.export([item("WorkflowJob", 1), item("WorkflowJob", 2)])
    sink.close()

    assert (failed.retryable, retried.accepted) == ((0, 1), (0, 1))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["properties"]["index"] for r in records] == ["0", "1", "2"]
