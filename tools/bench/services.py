"""Start the product's own processes for a figure: the frontend under gunicorn, the backend pool."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools.azurite import PROJECT_ROOT, free_port
from tools.bench.payload import SECRET

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
# Variables of the developer's shell that would reconfigure the services under test.
_OWN_PREFIXES = (
    "BACKEND_",
    "APPLICATIONINSIGHTS_",
    "AZURE_STORAGE_",
    "GITHUB_WEBHOOK_SECRET",
    "GUNICORN_",
    "FRONTEND_",
    "WEB_CONCURRENCY",
    "TELEMETRY_FILE",
    "HOST",
    "PORT",
)


class Service:
    """One subprocess in its own session, its output in a log file under `workdir`.

    Services of one name share the file (each figure's backend appends to `backend.log`), so
    each reads back only what it wrote, from where the file ended when it started.
    """

    def __init__(self, name: str, command: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()
        base = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        base.update(PYTHONPATH=str(PROJECT_ROOT), HOME=str(workdir), **env)
        self.process = subprocess.Popen(
            command,
            cwd=workdir,
            env=base,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_text(self) -> str:
        """What this service wrote so far (not what an earlier one of its name wrote)."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode("utf-8", errors="replace")

    def check_alive(self) -> None:
        """Raise with the log's tail if the service exited."""
        if self.process.poll() is not None:
            tail = self.log_text()[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM the service's session, then SIGKILL it if it lingers."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def start_frontend(
    workdir: Path,
    connection_string: str,
    queue: str,
    workers: int,
    threads: int,
    packing: bool = True,
) -> tuple[Service, int]:
    """Start gunicorn with the frontend on a free port and wait until /health answers."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    config = PROJECT_ROOT / "frontend" / "gunicorn.conf.py"
    env = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "AZURE_STORAGE_CONNECTION_STRING": connection_string,
        "AZURE_STORAGE_QUEUE_NAME": queue,
        "WEB_CONCURRENCY": str(workers),
        "GUNICORN_THREADS": str(threads),
        "FRONTEND_PACKING": "true" if packing else "false",
    }
    service = Service(
        "frontend",
        [str(gunicorn), "--config", str(config), "frontend.app:create_app()"],
        workdir,
        env,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        service.check_alive()
        if _healthy(port):
            return service, port
        time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"frontend did not answer /health within {STARTUP_TIMEOUT_S:.0f} s")


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def warm_frontend(port: int, requests: int) -> None:
    """GET /health a few times so every worker has imported and answered once."""
    for _ in range(requests):
        _healthy(port)


def start_backend(
    workdir: Path,
    connection_string: str,
    queue: str,
    ingestion: str,
    processes: int,
    ledger: bool = True,
) -> Service:
    """Start `python -m backend` exporting to the ingestion server at `ingestion`."""
    env = {
        "AZURE_STORAGE_CONNECTION_STRING": connection_string,
        "AZURE_STORAGE_QUEUE_NAME": queue,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion,
        "WORKER_PROCESSES": str(processes),
        "POLL_INTERVAL_SECONDS": "0.2",
        "VISIBILITY_TIMEOUT_SECONDS": "300",
        "MAX_MESSAGES_PER_BATCH": "32",
        "TELEMETRY_FILE": str(workdir / "telemetry.jsonl"),
        "LEDGER_ENABLED": "true" if ledger else "false",
    }
    return Service("backend", [sys.executable, "-m", "backend"], workdir, env)


def wait_for_workers(service: Service, processes: int) -> float:
    """Wait until every worker logged that its loop started; the monotonic time of the first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    first: float | None = None
    while time.monotonic() < deadline:
        service.check_alive()
        started = service.log_text().count(" started on queue ")
        if started and first is None:
            first = time.monotonic()
        if started >= processes and first is not None:
            return first
        time.sleep(0.01)
    raise RuntimeError(f"backend workers did not start within {STARTUP_TIMEOUT_S:.0f} s")
