"""Right after a deployment a role is not yet in force: 503 at the door, hold behind it.

Azure answers `403 AuthorizationPermissionMismatch` to a valid token until the identity's role
assignment has propagated, which takes minutes. The frontend must answer 503 (GitHub's
delivery can be redelivered), and the backend must back off and hold its messages: nothing is
poisoned, and everything is exported once the role arrives. Azurite knows no roles, so a
`RoleGate` in front of it answers the 403 until the test grants the role.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from common.azure_clients import ClientTimeouts, queue_client
from common.azure_queue import AzureQueue
from common.settings import StorageSettings
from frontend.app import create_app
from tests.backend.fakes import message_text
from tests.backend.harness import BackendProcess, wait_until
from tests.frontend.deliveries import frontend_settings, post_webhook, signed_delivery
from tests.identity.certificate import Certificate
from tests.identity.fixtures import BACKEND_CLIENT_ID, FRONTEND_CLIENT_ID
from tests.identity.role_gate import RoleGate, role_gate
from tests.identity.token_server import TokenServer
from tools.azurite import ACCOUNT_NAME, Azurite
from tools.payloads import workflow_job_payload, workflow_run_payload

VISIBILITY_S = 2
PROBE_TIMEOUTS = ClientTimeouts(connection_timeout_s=5.0, read_timeout_s=10.0)


@pytest.fixture
def queue_gate(oauth_azurite: Azurite, loopback_certificate: Certificate) -> Iterator[RoleGate]:
    with role_gate("queue", oauth_azurite.queue_port, loopback_certificate) as gate:
        yield gate


@pytest.fixture
def table_gate(oauth_azurite: Azurite, loopback_certificate: Certificate) -> Iterator[RoleGate]:
    with role_gate("table", oauth_azurite.table_port, loopback_certificate) as gate:
        yield gate


@pytest.fixture
def direct_queue(oauth_storage_settings: StorageSettings) -> Iterator[AzureQueue]:
    """The test's queue and poison queue, reached without a gate."""
    queue = AzureQueue(oauth_storage_settings)
    queue.ensure_queues()
    yield queue
    queue.close()


def _depth(storage: StorageSettings, queue_name: str) -> int:
    with queue_client(storage, queue_name, PROBE_TIMEOUTS) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


def test_the_frontend_answers_503_until_its_sender_role_arrives(
    monkeypatch: pytest.MonkeyPatch,
    managed_identity: TokenServer,
    oauth_storage_settings: StorageSettings,
    direct_queue: AzureQueue,
    queue_gate: RoleGate,
) -> None:
    # Given the frontend on its own identity, behind a queue that refuses its token's role
    monkeypatch.setenv("AZURE_CLIENT_ID", FRONTEND_CLIENT_ID)
    gated = replace(oauth_storage_settings, queue_endpoint=queue_gate.endpoint)
    client = create_app(frontend_settings(gated)).test_client()
    body, headers = signed_delivery()

    # When GitHub delivers before the role is in force, then after
    refused = post_webhook(client, body, headers)
    not_ready = client.get("/ready")
    queue_gate.granted = True
    accepted = post_webhook(client, body, headers)

    # Then the first answer is a 503 to retry, the second a 202, and only it was queued
    assert (refused.status_code, not_ready.status_code) == (503, 503)
    assert refused.headers["Retry-After"] == "30"
    assert accepted.status_code == 202
    assert len(direct_queue.receive(32, visibility_timeout_s=30)) == 1
    assert queue_gate.denied >= 2
    assert queue_gate.schemes == {"Bearer"}
    assert FRONTEND_CLIENT_ID in {issued.client_id for issued in managed_identity.issued}


def _names(telemetry: Path) -> list[str]:
    if not telemetry.exists():
        return []
    lines = telemetry.read_text(encoding="utf-8").splitlines()
    return sorted(json.loads(line)["name"] for line in lines if line.strip())


@pytest.mark.slow
def test_the_backend_holds_until_its_roles_arrive_and_poisons_nothing(
    tmp_path: Path,
    managed_identity: TokenServer,
    oauth_storage_settings: StorageSettings,
    direct_queue: AzureQueue,
    queue_gate: RoleGate,
    table_gate: RoleGate,
) -> None:
    # Given two deliveries queued, and a backend whose queue and table roles are not in force
    storage = oauth_storage_settings
    direct_queue.send(message_text(workflow_run_payload("completed"), delivery_id="d-run"))
    direct_queue.send(message_text(workflow_job_payload("completed"), delivery_id="d-job"))
    telemetry = tmp_path / "telemetry.jsonl"
    tokens_before = len(managed_identity.issued)
    backend = BackendProcess(
        tmp_path,
        storage,
        AZURE_STORAGE_ACCOUNT_NAME=ACCOUNT_NAME,
        AZURE_STORAGE_QUEUE_ENDPOINT=queue_gate.endpoint,
        AZURE_STORAGE_TABLE_ENDPOINT=table_gate.endpoint,
        VISIBILITY_TIMEOUT_SECONDS=str(VISIBILITY_S),
        MAX_DEQUEUE_COUNT="2",
        WORKER_PROCESSES="1",
    )
    try:
        # When the queue role arrives first and the table role several visibility timeouts later
        wait_until(lambda: queue_gate.denied >= 3, what="the backend tries the queue")
        queue_gate.granted = True
        wait_until(lambda: table_gate.denied >= 3, what="the backend reaches the ledger")
        time.sleep(3 * VISIBILITY_S)
        held = (_names(telemetry), _depth(storage, storage.poison_queue_name))
        table_gate.granted = True
        wait_until(
            lambda: len(_names(telemetry)) >= 6 and _depth(storage, storage.queue_name) == 0,
            timeout_s=60,
            what="everything exported once the roles are in force",
        )
    finally:
        code = backend.stop()

    # Then nothing was exported or poisoned while refused, and afterwards each event once
    assert held == ([], 0)
    assert _names(telemetry) == ["WorkflowJob", "WorkflowRun"] + ["WorkflowStep"] * 4
    assert _depth(storage, storage.poison_queue_name) == 0
    assert queue_gate.schemes == table_gate.schemes == {"Bearer"}
    issued = managed_identity.issued[tokens_before:]
    assert {(token.client_id, token.resource) for token in issued} == {
        (BACKEND_CLIENT_ID, "https://storage.azure.com")
    }
    assert code == 0
