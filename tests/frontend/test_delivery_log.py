"""One structured log line per delivery, with neither the body nor a secret in it."""

from __future__ import annotations

import json
import logging

import pytest
from flask.testing import FlaskClient

from common.logs import JsonFormatter
from common.memory_queue import InMemoryQueue
from tests.frontend.deliveries import OLD_SECRET, SECRET, github_headers, json_body
from tools.payloads import DELIVERY_ID, workflow_job_payload

LOGGER = "frontend.views"


def _delivery_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and hasattr(r, "outcome")]


def test_a_queued_delivery_logs_one_line_with_its_fields(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    body = json_body(workflow_job_payload("completed", name="unit tests (secret-ish name)"))
    headers = github_headers(body, "workflow_job")

    client.post("/webhook", data=body, headers=headers)

    [record] = _delivery_records(caplog)
    line = json.loads(JsonFormatter("frontend").format(record))
    assert line["duration_ms"] >= 0
    assert line["message_bytes"] > 0
    del line["time"], line["duration_ms"], line["message_bytes"]
    assert line == {
        "level": "INFO",
        "service": "frontend",
        "logger": LOGGER,
        "message": f"delivery {DELIVERY_ID} workflow_job completed: queued 202",
        "delivery_id": DELIVERY_ID,
        "event": "workflow_job",
        "action": "completed",
        "truncated": False,
        "message_deliveries": 1,
        "outcome": "queued",
        "status": 202,
    }
    text = JsonFormatter("frontend").format(record)
    assert "secret-ish" not in text
    assert SECRET not in text and OLD_SECRET not in text
    assert headers["X-Hub-Signature-256"][7:] not in text


@pytest.mark.parametrize(
    ("event", "signature", "outcome", "status", "level"),
    [
        ("workflow_run", "sha256=" + "0" * 64, "bad_signature", 401, "WARNING"),
        ("ping", None, "pong", 200, "INFO"),
        ("push", None, "ignored", 200, "INFO"),
    ],
)
def test_every_delivery_logs_its_outcome_and_status(
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    event: str,
    signature: str | None,
    outcome: str,
    status: int,
    level: str,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    body = json_body({"zen": "Mind your words, they are important."})
    headers = github_headers(body, event)
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature

    client.post("/webhook", data=body, headers=headers)

    [record] = _delivery_records(caplog)
    line = json.loads(JsonFormatter("frontend").format(record))
    assert (line["delivery_id"], line["event"], line["outcome"], line["status"]) == (
        DELIVERY_ID,
        event,
        outcome,
        status,
    )
    assert line["level"] == level
    assert "Mind your words" not in json.dumps(line)


def test_an_unavailable_queue_logs_the_503_as_an_error(
    client: FlaskClient, memory_queue: InMemoryQueue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    memory_queue.unavailable = True
    body = json_body(workflow_job_payload("queued"))

    client.post("/webhook", data=body, headers=github_headers(body, "workflow_job"))

    [record] = _delivery_records(caplog)
    fields = record.__dict__
    assert (record.levelname, fields["outcome"], fields["status"]) == (
        "ERROR",
        "queue_unavailable",
        503,
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "queue unavailable: in-memory queue marked unavailable"
    ]


def test_health_checks_are_not_deliveries(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    client.get("/health")

    assert _delivery_records(caplog) == []
