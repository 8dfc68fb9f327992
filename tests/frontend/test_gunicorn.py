"""The entry points: the factory and gunicorn refuse to start without a secret; gunicorn serves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from common.azure_queue import AzureQueue
from common.envelope import decode
from common.settings import SettingsError, StorageSettings
from frontend.app import create_app
from tests.conftest import unique_queue_name
from tests.frontend.deliveries import SECRET, github_headers, json_body
from tools.azurite import PROJECT_ROOT, Azurite, free_port
from tools.payloads import DELIVERY_ID, workflow_job_payload

GUNICORN = Path(sys.executable).parent / "gunicorn"
CONFIG = PROJECT_ROOT / "frontend" / "gunicorn.conf.py"
STARTUP_TIMEOUT_S = 20.0
NO_SECRET_MESSAGE = (
    "GITHUB_WEBHOOK_SECRET is not set: set it to the secret configured on the GitHub webhook "
    "(several secrets, comma-separated, are all accepted during a rotation)"
)
# Variables that would change how the frontend under test is configured.
_CONFIGURING_PREFIXES = ("GITHUB_", "AZURE_", "GUNICORN_", "WEB_CONCURRENCY", "HOST", "PORT")


def test_create_app_without_a_secret_refuses_with_what_to_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")

    with pytest.raises(SettingsError) as raised:
        create_app()

    assert str(raised.value) == NO_SECRET_MESSAGE


def test_create_app_reads_the_environment_and_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GITHUB_WEBHOOK_SECRET=from-dotenv\n", encoding="utf-8")
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")

    app = create_app()

    assert app.extensions["github_telemetry"].settings.webhook_secrets == ("from-dotenv",)


def _environment(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIGURING_PREFIXES)}
    env.update(PYTHONPATH=str(PROJECT_ROOT), HOME=str(tmp_path), **values)
    return env


def _gunicorn(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(GUNICORN), "--config", str(CONFIG), "frontend.app:create_app()"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_gunicorn_without_a_secret_exits_non_zero_with_what_to_set(tmp_path: Path) -> None:
    env = _environment(tmp_path, AZURE_STORAGE_CONNECTION_STRING="UseDevelopmentStorage=true")

    process = _gunicorn(env, tmp_path)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 78
    assert stderr.strip() == f"github-telemetry frontend cannot start: {NO_SECRET_MESSAGE}"


def _wait_until_listening(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}: {process.communicate()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"gunicorn did not listen on {port} within {STARTUP_TIMEOUT_S:.0f} s")


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.azurite
@pytest.mark.slow
def test_gunicorn_serves_a_signed_delivery_and_stops_cleanly(
    azurite: Azurite, tmp_path: Path
) -> None:
    port = free_port()
    queue_name = unique_queue_name("gunicorn")
    env = _environment(
        tmp_path,
        GITHUB_WEBHOOK_SECRET=f"old-secret,{SECRET}",
        AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string,
        AZURE_STORAGE_QUEUE_NAME=queue_name,
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
    )
    process = _gunicorn(env, tmp_path)
    try:
        _wait_until_listening(process, port)
        body = json_body(workflow_job_payload("completed"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhook?token=never-logged",
            data=body,
            headers=github_headers(body, "workflow_job"),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, json.loads(response.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)

    assert (status, answer["status"], process.returncode) == (202, "queued", 0)
    reader = AzureQueue(StorageSettings(azurite.connection_string, None, queue_name))
    [message] = reader.receive(32, visibility_timeout_s=30)
    reader.close()
    assert decode(message.content).delivery_id == DELIVERY_ID
    lines = _json_lines(stdout + stderr)
    # A delivery is logged once, by the view, with what an access line would say.
    assert [line for line in lines if line.get("path") == "/webhook"] == []
    [access] = [line for line in lines if line.get("path") == "/health"]
    assert (access["method"], access["status"], access["service"]) == ("GET", 200, "frontend")
    [delivery] = [line for line in lines if line.get("outcome")]
    assert (delivery["delivery_id"], delivery["status"]) == (DELIVERY_ID, 202)
    assert isinstance(delivery["duration_ms"], float)
    assert "never-logged" not in stdout + stderr
    assert SECRET not in stdout + stderr
