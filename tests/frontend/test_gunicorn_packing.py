"""gunicorn with packing on: concurrent deliveries share queue messages, each decoded once."""

from __future__ import annotations

import json
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from common.azure_queue import AzureQueue
from common.envelope import decode_message
from common.settings import StorageSettings
from tests.conftest import unique_queue_name
from tests.frontend.deliveries import SECRET, github_headers, json_body
from tests.frontend.test_gunicorn import _environment, _gunicorn, _wait_until_listening
from tools.azurite import Azurite, free_port
from tools.payloads import JOB_ID, workflow_job_payload

DELIVERIES = 40
THREADS = 8

pytestmark = [pytest.mark.azurite, pytest.mark.slow]


def _post(port: int, index: int) -> int:
    body = json_body(workflow_job_payload("completed", id=JOB_ID + index))
    headers = github_headers(body, "workflow_job") | {"X-GitHub-Delivery": f"d-{index:02d}"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        json.loads(response.read())
        return int(response.status)


def test_concurrent_deliveries_are_all_accepted_in_fewer_messages(
    azurite: Azurite, tmp_path: Path
) -> None:
    port = free_port()
    storage = StorageSettings(azurite.connection_string, None, unique_queue_name("packing"))
    env = _environment(
        tmp_path,
        GITHUB_WEBHOOK_SECRET=SECRET,
        AZURE_STORAGE_CONNECTION_STRING=storage.connection_string or "",
        AZURE_STORAGE_QUEUE_NAME=storage.queue_name,
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS=str(THREADS),
    )
    process = _gunicorn(env, tmp_path)
    try:
        _wait_until_listening(process, port)
        with ThreadPoolExecutor(THREADS) as pool:
            statuses = list(pool.map(lambda i: _post(port, i), range(DELIVERIES)))
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)

    assert (statuses, process.returncode) == ([202] * DELIVERIES, 0)
    reader = AzureQueue(storage)
    texts: list[str] = []
    while batch := reader.receive(32, visibility_timeout_s=60):
        texts += [message.content for message in batch]
    reader.close()
    delivered = sorted(e.delivery_id for text in texts for e in decode_message(text))
    assert delivered == [f"d-{i:02d}" for i in range(DELIVERIES)]  # each exactly once
    assert len(texts) < DELIVERIES
