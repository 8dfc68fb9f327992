"""`make run`'s stack runner: it starts Azurite, frontend and backend, and Ctrl-C stops them."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.envelope import utc_now
from tools.azurite import PROJECT_ROOT, free_port
from tools.demo import send
from tools.demo_day import Delivery
from tools.devstack import local_secret
from tools.payloads import workflow_run_payload


def test_the_local_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "webhook-secret"

    first = local_secret(path)
    second = local_secret(path)

    assert first == second
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_secret(tmp_path / "other") != first


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_the_stack_accepts_a_delivery_into_the_sink_and_ctrl_c_stops_everything(
    tmp_path: Path,
) -> None:
    port = free_port()
    sink = tmp_path / "telemetry.jsonl"
    env = {
        key: value
        for key, value in os.environ.items()
        if "AZURE_STORAGE" not in key
        and "APPLICATIONINSIGHTS" not in key
        and "GITHUB_WEBHOOK_SECRET" not in key
    }
    env.update(
        PORT=str(port),
        DEVSTACK_VAR_DIR=str(tmp_path / "var"),
        BACKEND_TELEMETRY_FILE=str(sink),
        BACKEND_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
        WORKER_PROCESSES="1",
        WEB_CONCURRENCY="1",
        POLL_INTERVAL_SECONDS="0.2",
    )
    stack = subprocess.Popen(
        [sys.executable, "-m", "tools.devstack"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        banner = ""
        assert stack.stdout is not None
        while "Ctrl-C stops everything" not in banner:
            line = stack.stdout.readline()
            assert line, f"the stack exited early: {banner}"
            banner += line
        queue_port = int(re.search(r"queue on 127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        secret = (tmp_path / "var" / "webhook-secret").read_text().strip()
        assert f"secret      : {secret}" in banner
        assert f"webhook URL : http://127.0.0.1:{port}/webhook" in banner

        deadline = time.monotonic() + 30
        while not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        delivery = Delivery(utc_now(), "workflow_run", workflow_run_payload("completed"))
        assert send(delivery, f"http://127.0.0.1:{port}/webhook", secret) == 202
        while not (sink.exists() and sink.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        [item] = [json.loads(line) for line in sink.read_text().splitlines()]
        assert item["name"] == "WorkflowRun"

        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=60) == 0
        rest = stack.stdout.read()
        assert "stopped." in rest
        assert not _listening(port)
        assert not _listening(queue_port)
    finally:
        if stack.poll() is None:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()
        if stack.stdout is not None:
            stack.stdout.close()
