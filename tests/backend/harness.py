"""Run the real `python -m backend` as a subprocess against Azurite, and inspect the queues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from azure.storage.queue import QueueClient

from common.azure_queue import AzureQueue, create_queue
from common.settings import StorageSettings
from tools.azurite import PROJECT_ROOT

# Variables of the developer's shell that must not leak into a test's backend.
_OWN_PREFIXES = ("BACKEND_", "APPLICATIONINSIGHTS_", "AZURE_STORAGE_", "TELEMETRY_", "LOG_")


def wait_until(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    """Poll `condition` every 50 ms until it holds; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what or condition}")
        time.sleep(0.05)


class BackendProcess:
    """`python -m backend` in `workdir` (so no `.env` of the checkout is read), logs to a file."""

    def __init__(self, workdir: Path, storage: StorageSettings, **variables: str) -> None:
        self.workdir = workdir
        self.log_path = workdir / f"backend-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        env.update(
            PYTHONPATH=str(PROJECT_ROOT),
            BACKEND_AZURE_STORAGE_CONNECTION_STRING=storage.connection_string or "",
            BACKEND_AZURE_STORAGE_QUEUE_NAME=storage.queue_name,
            BACKEND_POLL_INTERVAL_SECONDS="0.2",
            BACKEND_TELEMETRY_FILE=str(workdir / "telemetry.jsonl"),
        )
        if "APPLICATIONINSIGHTS_CONNECTION_STRING" not in variables:
            env["BACKEND_TELEMETRY_SINK"] = "file"
        env.update({f"BACKEND_{name}": value for name, value in variables.items()})
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records written so far."""
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def messages(self) -> list[str]:
        """The log messages written so far."""
        return [str(record.get("message", "")) for record in self.records()]

    def worker_pids(self) -> list[int]:
        """Pids of every worker the supervisor started, in order."""
        prefix = "worker "
        return [
            int(message.split()[1])
            for message in self.messages()
            if message.startswith(prefix) and " started in slot " in message
        ]

    def workers_ready(self, count: int) -> bool:
        """True once `count` workers logged that their loop started."""
        return sum(" started on queue " in m for m in self.messages()) >= count

    def signal(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """Send a signal to the supervisor."""
        self.process.send_signal(signum)

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM the supervisor and return its exit code; kill it if it hangs."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float = 30.0) -> int:
        """Wait for the supervisor to exit and return its code; kill it if it hangs."""
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            self._log.close()

    def kill(self) -> None:
        """Kill the supervisor and every worker it logged, ignoring ones already gone."""
        for pid in [*self.worker_pids(), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self._log.close()


class QueueProbe:
    """Producer and observer of a test's queue and its poison queue on Azurite."""

    def __init__(self, storage: StorageSettings) -> None:
        self.storage = storage
        self.queue: AzureQueue = create_queue(storage)
        self._main = QueueClient.from_connection_string(
            storage.connection_string or "", storage.queue_name
        )
        poison = replace(storage, queue_name=storage.poison_queue_name)
        self._poison = QueueClient.from_connection_string(
            poison.connection_string or "", poison.queue_name
        )

    def send(self, content: str) -> str:
        """Enqueue one message."""
        return self.queue.send(content)

    def count(self) -> int:
        """Messages in the main queue, visible or not (none deleted means none missing)."""
        return int(self._main.get_queue_properties().approximate_message_count or 0)

    def poison_records(self) -> list[dict[str, Any]]:
        """Peek the poison queue's records (up to 32) without taking them."""
        return [json.loads(item.content) for item in self._poison.peek_messages(max_messages=32)]

    def close(self) -> None:
        """Close the clients."""
        self.queue.close()
        self._main.close()
        self._poison.close()
