"""Signing, credential and permission failures of storage calls are named in one line."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from common.azure_clients import describe_error
from common.azure_queue import AzureQueue, create_queue
from common.queue import QueueUnavailable
from common.settings import StorageSettings
from tests.conftest import unique_queue_name
from tools.azurite import ACCOUNT_NAME, PROJECT_ROOT, Azurite, free_port

# The shape of azure-identity's message when no credential of the chain works.
NO_CREDENTIAL = (
    "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
    "Attempted credentials:\n"
    "\tEnvironmentCredential: EnvironmentCredential authentication unavailable. Environment "
    "variables are not fully configured.\n"
    "Visit https://aka.ms/azsdk/python/identity/environmentcredential/troubleshoot to "
    "troubleshoot this issue.\n"
    "\tManagedIdentityCredential: ManagedIdentityCredential authentication unavailable.\n"
    "\tAzureCliCredential: Azure CLI not found on path\n"
    "To mitigate this issue, please refer to the troubleshooting guidelines here at "
    "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
)


def _forbidden(code: str) -> HttpResponseError:
    error = HttpResponseError(message=f"{code}: This request is not authorized.")
    error.status_code = 403
    error.error_code = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (
            ClientAuthenticationError(message=NO_CREDENTIAL),
            "failed: no usable Azure credential: DefaultAzureCredential tried "
            "EnvironmentCredential, ManagedIdentityCredential, AzureCliCredential; in Azure "
            "assign a managed identity, locally sign in with `az login` or set "
            "AZURE_STORAGE_CONNECTION_STRING",
        ),
        (
            _forbidden("AuthorizationPermissionMismatch"),
            "answered 403 AuthorizationPermissionMismatch: the identity has no data role on this "
            "account (e.g. Storage Queue Data Contributor)",
        ),
        (
            _forbidden("AuthenticationFailed"),
            "answered 403 AuthenticationFailed: the account key (or SAS) is wrong for this account",
        ),
    ],
)
def test_failures_are_described_in_one_line(error: HttpResponseError, described: str) -> None:
    assert describe_error(error) == described


@pytest.mark.parametrize("call", ["ping", "send"])
def test_a_key_that_is_not_base64_is_named_before_any_request(call: str) -> None:
    # Given a connection string that skipped the start check (the key is not base64)
    port = free_port()
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName=foo;AccountKey=bar;"
        f"QueueEndpoint=http://127.0.0.1:{port}/foo;"
    )
    queue = AzureQueue(StorageSettings(connection_string, None, "hooks"))

    # (a send leaves such a key to the SDK, whose error names it: common/queue_put.py)
    with pytest.raises(QueueUnavailable) as raised:
        queue.ping() if call == "ping" else queue.send("text")

    assert str(raised.value) == (
        "queue hooks failed: the account key cannot sign requests, it is not base64 "
        "(Incorrect padding)"
    )


@pytest.mark.azurite
def test_a_wrong_key_is_a_refusal_at_start_not_an_outage(
    azurite: Azurite, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_key = base64.b64encode(b"not the account key").decode()
    connection_string = azurite.connection_string.replace(
        azurite.connection_string.split("AccountKey=")[1].split(";")[0], wrong_key
    )
    name = unique_queue_name("wrongkey")

    with caplog.at_level(logging.WARNING, logger="common.azure_queue"):
        queue = create_queue(StorageSettings(connection_string, None, name))
    with pytest.raises(QueueUnavailable) as raised:
        queue.send("{}")
    queue.close()

    described = (
        "answered 403 AuthenticationFailed: the account key (or SAS) is wrong for this account"
    )
    assert str(raised.value) == f"queue {name} {described}"
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        ("ERROR", f"queue {name} refused at start: queue {name} {described}")
    ]
    assert ACCOUNT_NAME in connection_string


@pytest.mark.slow
def test_no_usable_credential_is_logged_in_one_line_and_never_as_answered_none(
    tmp_path: Path,
) -> None:
    # Given an account name and no credential of any kind on this machine
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "APPLICATIONINSIGHTS", "BACKEND_", "IDENTITY_", "MSI_"))
    }
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        AZURE_STORAGE_ACCOUNT_NAME="nosuchaccount",
        TELEMETRY_SINK="file",
        TELEMETRY_FILE=str(tmp_path / "telemetry.jsonl"),
        BACKEND_HEARTBEAT_FILE=str(tmp_path / "hb"),
        WORKER_PROCESSES="1",
        LOG_FORMAT="text",
    )
    log_path = tmp_path / "backend.log"
    with log_path.open("wb") as log:
        backend = subprocess.Popen(
            [sys.executable, "-m", "backend"], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            while "no usable Azure credential" not in log_path.read_text(errors="replace"):
                assert time.monotonic() < deadline, log_path.read_text(errors="replace")
                assert backend.poll() is None, log_path.read_text(errors="replace")
                time.sleep(0.2)
        finally:
            backend.terminate()
            backend.wait(timeout=60)

    logs = log_path.read_text(errors="replace")
    assert "answered None" not in logs
    failures = [line for line in logs.splitlines() if "no usable Azure credential" in line]
    assert failures and all(
        "DefaultAzureCredential tried EnvironmentCredential" in line for line in failures
    )
    # azure-identity's own dozen-line warning is not repeated beside ours
    assert "Attempted credentials:" not in logs
