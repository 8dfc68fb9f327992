"""End to end with no secret but the webhook's: both services on managed identities only.

The real gunicorn frontend and the real `python -m backend` start with what Container Apps
gives them: account names, service endpoints (Azurite in OAuth mode, over HTTPS), the identity
endpoint and its header, `AZURE_CLIENT_ID`, and an Application Insights connection string
whose key is no secret (the stand-in, like the resource, takes Entra ID tokens only). The
backend's publishing role is not in force for several visibility timeouts, as right after a
deployment: ingestion answers 403 until it is granted, and then every delivery arrives once.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.azure_clients import ClientTimeouts, queue_client
from common.azure_queue import AzureQueue
from common.settings import StorageSettings
from tests.backend.harness import wait_until
from tests.frontend.deliveries import SECRET, github_headers, json_body
from tests.idempotency.conftest import unique_table_name
from tests.identity.certificate import Certificate
from tests.identity.fixtures import (
    BACKEND_CLIENT_ID,
    FRONTEND_CLIENT_ID,
    IDENTITIES,
    identity_environment,
)
from tests.identity.token_server import TokenServer
from tools.azurite import ACCOUNT_NAME, PROJECT_ROOT, free_port
from tools.ingestion_server import IngestionServer
from tools.payloads import JOB_ID, RUN_ID, workflow_job_payload, workflow_run_payload

GUNICORN = Path(sys.executable).parent / "gunicorn"
VISIBILITY_S = 2
RUNS = 3
JOBS = 3
STEPS_PER_JOB = 4
MONITOR_RESOURCE = "https://monitor.azure.com/"
STORAGE_RESOURCE = "https://storage.azure.com"
AUTHENTICATION = f"Authorization=AAD;ClientId={BACKEND_CLIENT_ID}"
TIMEOUTS = ClientTimeouts(connection_timeout_s=5.0, read_timeout_s=10.0)


@pytest.fixture
def ingestion() -> Iterator[IngestionServer]:
    """Ingestion that takes Entra ID tokens only, with no role granted yet."""
    server = IngestionServer().start()
    server.require_entra_id()
    try:
        yield server
    finally:
        server.stop()


def _base(tmp_path: Path) -> dict[str, str]:
    """A process environment with nothing of this machine's configuration in it."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONUNBUFFERED": "1",  # the logs are read while the services run
    }


def _start(
    command: list[str], env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _deliveries() -> list[tuple[bytes, dict[str, str]]]:
    """Signed deliveries of distinct runs and jobs, the last one redelivered by GitHub."""
    deliveries = []
    for n in range(RUNS):
        body = json_body(workflow_run_payload(id=RUN_ID + n))
        deliveries.append((body, github_headers(body, "workflow_run", delivery_id=f"run-{n}")))
    for n in range(JOBS):
        body = json_body(workflow_job_payload(id=JOB_ID + n))
        deliveries.append((body, github_headers(body, "workflow_job", delivery_id=f"job-{n}")))
    return [*deliveries, deliveries[-1]]


def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook", data=body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def _depth(storage: StorageSettings, name: str) -> int:
    with queue_client(storage, name, TIMEOUTS) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


@pytest.mark.slow
def test_both_services_run_on_identities_alone_and_deliver_everything_once(
    tmp_path: Path,
    managed_identity: TokenServer,
    loopback_certificate: Certificate,
    oauth_storage_settings: StorageSettings,
    ingestion: IngestionServer,
) -> None:
    # Given the queues the deployment declares, and each app's environment in Container Apps
    storage = oauth_storage_settings
    setup = AzureQueue(storage)
    setup.ensure_queues()
    setup.close()
    storage_env = {
        "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT_NAME,
        "AZURE_STORAGE_QUEUE_NAME": storage.queue_name,
        "AZURE_STORAGE_QUEUE_ENDPOINT": str(storage.queue_endpoint),
    }
    port = free_port()
    frontend_env = {
        **_base(tmp_path),
        **storage_env,
        **identity_environment(managed_identity, loopback_certificate, FRONTEND_CLIENT_ID),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    backend_env = {
        **_base(tmp_path),
        **storage_env,
        **identity_environment(managed_identity, loopback_certificate, BACKEND_CLIENT_ID),
        "AZURE_STORAGE_TABLE_ENDPOINT": str(storage.table_endpoint),
        "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": AUTHENTICATION,
        "VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_S),
        "MAX_DEQUEUE_COUNT": "2",
        "WORKER_PROCESSES": "2",
        "POLL_INTERVAL_SECONDS": "0.2",
        # A ledger of this test's own: the session's Azurite keeps other tests' rows of the
        # same events, which would count these deliveries as already exported.
        "LEDGER_TABLE_NAME": unique_table_name(),
    }
    for env in (frontend_env, backend_env):
        assert not [name for name in env if "CONNECTION_STRING" in name and "STORAGE" in name]
        assert not [value for value in env.values() if "AccountKey" in value]
    tokens_before = len(managed_identity.issued)
    frontend = _start(
        [
            str(GUNICORN),
            "--config",
            str(PROJECT_ROOT / "frontend" / "gunicorn.conf.py"),
            "frontend.app:create_app()",
        ],
        frontend_env,
        tmp_path,
        tmp_path / "frontend.log",
    )
    backend = _start(
        [sys.executable, "-m", "backend"], backend_env, tmp_path, tmp_path / "backend.log"
    )

    def diagnosis() -> str:
        tail = (tmp_path / "backend.log").read_text(errors="replace")[-4000:]
        return f"{len(ingestion.events())} events, answers {ingestion.requests[-5:]}, log: {tail}"

    try:
        wait_until(lambda: _listening(port), timeout_s=30, what="gunicorn listens")

        # When GitHub delivers while the backend's publishing role is not yet in force
        statuses = [_post(port, body, headers) for body, headers in _deliveries()]
        wait_until(lambda: ingestion.received >= 3, timeout_s=60, what="ingestion is tried")
        time.sleep(3 * VISIBILITY_S)
        held = (len(ingestion.events()), _depth(storage, storage.poison_queue_name))
        refusals = {status for _path, status in ingestion.requests}

        # And then the role propagates
        ingestion.grant(IDENTITIES[BACKEND_CLIENT_ID])
        expected = RUNS + JOBS * (1 + STEPS_PER_JOB)
        wait_until(
            lambda: (
                len(ingestion.events()) >= expected and _depth(storage, storage.queue_name) == 0
            ),
            timeout_s=90,
            what=f"every delivery exported once the role is in force ({diagnosis()})",
        )
        time.sleep(2 * VISIBILITY_S)  # anything exported twice would arrive by now
    finally:
        codes = (_stop(frontend), _stop(backend))

    # Then nothing got through or was poisoned while refused, and each item arrived once
    assert statuses == [202] * (RUNS + JOBS + 1)
    assert held == (0, 0)
    assert refusals == {403}
    events = ingestion.events()
    names = Counter(event["data"]["baseData"]["name"] for event in events)
    assert names == {"WorkflowRun": RUNS, "WorkflowJob": JOBS, "WorkflowStep": JOBS * STEPS_PER_JOB}
    item_ids = [event["data"]["baseData"]["properties"]["item_id"] for event in events]
    assert len(set(item_ids)) == len(item_ids) == expected
    assert _depth(storage, storage.poison_queue_name) == 0
    # And each app used its own identity, for its own resources, over bearer tokens alone
    issued = {(t.client_id, t.resource) for t in managed_identity.issued[tokens_before:]}
    assert issued == {
        (FRONTEND_CLIENT_ID, STORAGE_RESOURCE),
        (BACKEND_CLIENT_ID, STORAGE_RESOURCE),
        (BACKEND_CLIENT_ID, MONITOR_RESOURCE),
    }
    logs = (tmp_path / "frontend.log").read_text() + (tmp_path / "backend.log").read_text()
    assert SECRET not in logs
    assert codes == (0, 0), logs[-3000:]
