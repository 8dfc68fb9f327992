"""The real pool against the strict ingestion stand-in: what the service refuses is never lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backend.telemetry.keys import event_key
from backend.telemetry.limits import MAX_VALUE_CHARS
from common.envelope import decode, utc_now
from common.queue import QueueMessage, poison_record
from tests.backend import test_pool_integration as pool
from tests.backend.fakes import message_text, pack_text
from tests.backend.harness import QueueProbe, wait_until
from tests.idempotency.conftest import unique_table_name
from tools.azurite import PROJECT_ROOT
from tools.ingestion_server import IngestionServer
from tools.payloads import JOB_ID, WORKFLOW_NAME, step, workflow_job_payload

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

# The pool, its queue probe and what it must deliver, as the pool's own tests define them.
probe = pool.probe
start_backend = pool.start_backend
deliveries, expected, received = pool.deliveries, pool.expected, pool.received

WRONG_KEY = "00000000-0000-4000-8000-00000000dead"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def properties(event: dict[str, Any]) -> dict[str, str]:
    return dict(event["data"]["baseData"]["properties"])


def test_a_job_completed_three_days_ago_arrives_at_its_true_time_and_nothing_is_poisoned(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    done = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    steps = [step(1, "Run tests", iso(done - timedelta(minutes=2)), iso(done))]
    payload = workflow_job_payload(
        "completed",
        steps=steps,
        created_at=iso(done - timedelta(minutes=3)),
        started_at=iso(done - timedelta(minutes=2)),
        completed_at=iso(done),
    )
    probe.send(message_text(payload))

    backend = start_backend()
    wait_until(lambda: probe.count() == 0, what="queue drained")

    events = ingestion_server.events()
    assert sorted(e["data"]["baseData"]["name"] for e in events) == ["WorkflowJob", "WorkflowStep"]
    for event in events:
        assert properties(event)["event_time"] == done.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        assert properties(event)["is_late"] == "true"
        sent_at = datetime.fromisoformat(event["time"])
        assert abs((sent_at - datetime.now(UTC)).total_seconds()) < 120
        assert event["tags"]["ai.operation.name"] == WORKFLOW_NAME
    assert backend.stop() == 0
    assert probe.poison_records() == []


def test_a_wrong_key_poisons_nothing_and_after_the_fix_every_job_arrives_once(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    texts = deliveries(4)
    for text in texts:
        probe.send(text)
    wrong = ingestion_server.connection_string_with(WRONG_KEY)

    backend = start_backend(
        APPLICATIONINSIGHTS_CONNECTION_STRING=wrong,
        MAX_DEQUEUE_COUNT="2",
        VISIBILITY_TIMEOUT_SECONDS="2",
    )
    wait_until(lambda: ingestion_server.received >= 1, what="a refused export")
    time.sleep(8.5)  # over four visibility timeouts, twice the dequeue budget

    assert probe.count() == len(texts)
    assert probe.poison_records() == []
    assert {status for _path, status in ingestion_server.requests} == {400}
    assert backend.stop() == 0
    assert any("Invalid instrumentation key" in m for m in backend.messages())

    fixed = start_backend(MAX_DEQUEUE_COUNT="2")
    wait_until(lambda: probe.count() == 0, what="queue drained after the fix")
    assert received(ingestion_server) == expected(texts)
    assert fixed.stop() == 0
    assert probe.poison_records() == []


def test_a_300_step_job_arrives_whole_through_an_ingestion_refusing_large_requests(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    ingestion_server.max_request_items = 50
    start = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    steps = [
        step(n, f"step {n}", iso(start + timedelta(seconds=n)), iso(start + timedelta(seconds=n)))
        for n in range(1, 301)
    ]
    probe.send(message_text(workflow_job_payload("completed", steps=steps)))

    backend = start_backend()
    wait_until(lambda: probe.count() == 0, what="queue drained")

    names = [e["data"]["baseData"]["name"] for e in ingestion_server.events()]
    assert (names.count("WorkflowJob"), names.count("WorkflowStep")) == (1, 300)
    assert 413 in {status for _path, status in ingestion_server.requests}
    assert backend.stop() == 0
    assert probe.poison_records() == []


def test_names_of_20000_characters_arrive_cut_to_the_limits(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any
) -> None:
    long = {key: key[0] * 20_000 for key in ("job", "workflow", "label", "step")}
    payload = workflow_job_payload(
        "completed",
        steps=[step(1, long["step"], "2024-03-05T10:00:11Z", "2024-03-05T10:02:40Z")],
        name=long["job"],
        workflow_name=long["workflow"],
        labels=[long["label"]],
    )
    probe.send(message_text(payload))

    backend = start_backend()
    wait_until(lambda: probe.count() == 0, what="queue drained")

    job, step_event = sorted(ingestion_server.events(), key=lambda e: e["data"]["baseData"]["name"])
    assert properties(job)["truncated_fields"] == "job_name,workflow_name,labels,operation_name"
    assert properties(step_event)["truncated_fields"] == (
        "step_name,job_name,workflow_name,operation_name"
    )
    for event in (job, step_event):
        values = properties(event).values()
        assert max(len(value) for value in values) == MAX_VALUE_CHARS
        assert len(event["tags"]["ai.operation.name"]) == 1024
    assert properties(step_event)["step_name"].startswith("sss")
    assert backend.stop() == 0
    assert probe.poison_records() == []


def replay(queue_probe: QueueProbe, workdir: Path, **variables: str) -> str:
    """Run `python -m backend.replay` configured by a `.env` alone, as an operator would."""
    workdir.mkdir()
    settings = {
        "AZURE_STORAGE_CONNECTION_STRING": queue_probe.storage.connection_string,
        "AZURE_STORAGE_QUEUE_NAME": queue_probe.storage.queue_name,
        **variables,
    }
    (workdir / ".env").write_text(
        "".join(f"{name}={value}\n" for name, value in settings.items()), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if "AZURE" not in k and "BACKEND" not in k}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "backend.replay"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_a_refused_item_goes_to_poison_and_after_the_replay_arrives_once(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any, tmp_path: Path
) -> None:
    run, job = deliveries(2)
    message = "105: Field 'name' on type 'EventData' is required"
    ingestion_server.reject(lambda e: e["data"]["baseData"]["name"] == "WorkflowRun", 400, message)
    probe.send(run)
    probe.send(job)
    backend = start_backend()
    wait_until(lambda: probe.count() == 0 and len(probe.poison_records()) == 1, what="poisoned")
    [record] = probe.poison_records()
    assert message in record["reason"]
    # A copy of the job, already exported, poisoned too (say, received too often).
    copy = QueueMessage("copy", "r", job, 9, utc_now())
    probe.queue.send_poison(poison_record(copy, "received 9 times", probe.queue.name, utc_now()))

    ingestion_server.recover()  # the cause is fixed
    output = replay(probe, tmp_path / "replay")
    wait_until(lambda: probe.count() == 0, what="replayed messages drained")

    assert "moved 2 record(s); 0 left that cannot be replayed" in output
    assert received(ingestion_server) == expected([run, job])
    assert probe.poison_records() == []
    assert backend.stop() == 0
    assert any(
        f"workflow_job:{JOB_ID + 1}:completed was already exported" in m for m in backend.messages()
    )


def test_a_refused_member_of_a_pack_goes_to_poison_and_after_the_replay_arrives_once(
    probe: QueueProbe, ingestion_server: IngestionServer, start_backend: Any, tmp_path: Path
) -> None:
    # Given a pack whose run the ingestion refuses for good, and its two jobs it accepts
    texts = deliveries(3)
    table = unique_table_name()  # the backend's ledger, which the replay must find too
    ingestion_server.reject(lambda e: e["data"]["baseData"]["name"] == "WorkflowRun", 400)
    probe.send(pack_text(*texts))
    backend = start_backend(LEDGER_TABLE_NAME=table)
    wait_until(lambda: probe.count() == 0 and len(probe.poison_records()) == 1, what="poisoned")
    [record] = probe.poison_records()
    assert (record["member_index"], record["member_count"]) == (0, 3)
    assert record["completed_key"] == event_key(decode(texts[0]))
    assert received(ingestion_server) == expected(texts[1:])

    # When the cause is fixed and the poison replayed
    ingestion_server.recover()
    output = replay(probe, tmp_path / "replay", LEDGER_TABLE_NAME=table)
    wait_until(lambda: probe.count() == 0, what="replayed member drained")

    # Then the run arrives once, and its siblings were not exported again
    assert "moved 1 record(s); 0 left that cannot be replayed" in output
    assert received(ingestion_server) == expected(texts)
    assert probe.poison_records() == []
    assert backend.stop() == 0
