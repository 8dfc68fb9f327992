"""What the front door queues survives: never expires, poisons whole, or is acknowledged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from common.azure_queue import AzureQueue
from common.envelope import MAX_ENVELOPE_BYTES, Envelope, decode
from common.packing import MessageTooLarge, pack
from common.settings import StorageSettings
from tests.backend.harness import BackendProcess, QueueProbe, wait_until
from tests.conftest import unique_queue_name
from tests.frontend.attacks import post
from tests.frontend.deliveries import HOOK_ID, github_headers, json_body
from tests.frontend.oversized import noise
from tests.frontend.server import frontend_environment, running_frontend
from tools.azurite import Azurite
from tools.payloads import (
    DELIVERY_ID,
    ORG_ID,
    RECEIVED_AT,
    workflow_job_payload,
    workflow_run_payload,
)

pytestmark = [pytest.mark.slow, pytest.mark.azurite]


def _storage(azurite: Azurite, prefix: str) -> StorageSettings:
    return StorageSettings(azurite.connection_string, None, unique_queue_name(prefix))


def _env(home: Path, storage: StorageSettings) -> dict[str, str]:
    return frontend_environment(
        home,
        AZURE_STORAGE_CONNECTION_STRING=storage.connection_string or "",
        AZURE_STORAGE_QUEUE_NAME=storage.queue_name,
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
    )


def _near_limit_run() -> dict[str, Any]:
    """A run whose envelope takes between 1 KB under its cap and the cap itself."""
    low, high = 1_000, 200_000
    while low < high:  # the longest incompressible head_sha that still fits
        middle = (low + high + 1) // 2
        payload = workflow_run_payload("completed", head_sha=noise("sha", middle))
        envelope = Envelope(
            DELIVERY_ID,
            "workflow_run",
            "completed",
            RECEIVED_AT,
            payload,
            hook_id=HOOK_ID,
            installation_target_type="organization",
            installation_target_id=str(ORG_ID),
        )
        try:
            fits = not pack(envelope).truncated
        except MessageTooLarge:
            fits = False
        low, high = (middle, high) if fits else (low, middle - 1)
    # A little room for what the frontend's clock adds (fractions of a second).
    return workflow_run_payload("completed", head_sha=noise("sha", low - 100))


def test_a_near_limit_message_never_expires_and_its_poison_record_holds_it_whole(
    azurite: Azurite, tmp_path: Path
) -> None:
    storage = _storage(azurite, "poison")
    payload = _near_limit_run()
    body = json_body(payload)
    with running_frontend(_env(tmp_path, storage), tmp_path) as frontend:
        answer = post(frontend.port, body, github_headers(body, "workflow_run"))
    assert answer.status == 202

    queue = AzureQueue(storage)
    [message] = queue.receive(1, visibility_timeout_s=30)
    assert MAX_ENVELOPE_BYTES - 1024 < len(message.content) <= MAX_ENVELOPE_BYTES
    # When the backend can only poison it, with the longest reason it may give,
    queue.dead_letter(message, "unmappable: " + "\ud800\0" * 50_000)
    queue.close()

    # then the poison record holds the original text whole, as it was queued,
    poison = QueueClient.from_connection_string(
        storage.connection_string or "", storage.poison_queue_name
    )
    [item] = poison.peek_messages(max_messages=32)
    poison.close()
    record = json.loads(item.content)
    assert (record["content_encoding"], record["content"]) == ("text", message.content)
    assert (
        decode(record["content"]).payload["workflow_run"]["head_sha"]
        == (payload["workflow_run"]["head_sha"])
    )
    # and neither the record nor the message expires (Azure's default is 7 days).
    assert item.expires_on == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_messages_are_sent_without_expiry(azurite: Azurite, tmp_path: Path) -> None:
    storage = _storage(azurite, "ttl")
    body = json_body(workflow_job_payload("completed"))
    with running_frontend(_env(tmp_path, storage), tmp_path) as frontend:
        assert post(frontend.port, body, github_headers(body, "workflow_job")).status == 202

    client = QueueClient.from_connection_string(storage.connection_string or "", storage.queue_name)
    [item] = client.peek_messages(max_messages=1)
    client.close()
    # Azure's default would be 7 days from now; "never" reads as the end of year 9999.
    assert item.expires_on == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_an_action_github_may_add_later_is_acknowledged_without_telemetry(
    azurite: Azurite, tmp_path: Path
) -> None:
    storage = _storage(azurite, "newaction")
    body = json_body(workflow_job_payload("requeued_by_policy"))
    with running_frontend(_env(tmp_path, storage), tmp_path) as frontend:
        assert post(frontend.port, body, github_headers(body, "workflow_job")).status == 202

    probe = QueueProbe(storage)
    backend = BackendProcess(tmp_path, storage, WORKER_PROCESSES="1")
    try:
        wait_until(lambda: probe.count() == 0, what="the backend settled the delivery")
    finally:
        backend.stop()
        poisoned = probe.poison_records()
        probe.close()

    assert poisoned == []
    telemetry = tmp_path / "telemetry.jsonl"
    assert not telemetry.exists() or telemetry.read_text(encoding="utf-8") == ""
