"""Run the frontend under real gunicorn on a loopback port, for the tests that attack it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.frontend.deliveries import SECRET
from tools.azurite import PROJECT_ROOT, free_port
from tools.bench.memory import children_of, rss_bytes

GUNICORN = Path(sys.executable).parent / "gunicorn"
CONFIG = PROJECT_ROOT / "frontend" / "gunicorn.conf.py"
STARTUP_TIMEOUT_S = 20.0
# Variables that would change how the frontend under test is configured.
_CONFIGURING_PREFIXES = ("GITHUB_", "AZURE_", "GUNICORN_", "WEB_CONCURRENCY", "HOST", "PORT")


@dataclass
class Frontend:
    """A running gunicorn: its port, its process, and what it wrote when it stopped."""

    port: int
    process: subprocess.Popen[str]
    output: str = ""

    def worker_rss_bytes(self) -> list[int]:
        """The resident memory of each worker process now."""
        return [rss_bytes(child) for child in children_of(self.process.pid)]


def frontend_environment(home: Path, **values: str) -> dict[str, str]:
    """The environment of a frontend under test: the caller's, minus its own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIGURING_PREFIXES)}
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        HOME=str(home),
        GITHUB_WEBHOOK_SECRET=SECRET,
        HOST="127.0.0.1",
        FRONTEND_PACKING="false",
    )
    env.update(values)
    return env


@contextmanager
def running_frontend(env: dict[str, str], cwd: Path, *extra_args: str) -> Iterator[Frontend]:
    """Start gunicorn with the project's config on a free port; stop it (SIGTERM) after."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    # A file, not a pipe: a pipe nobody drains would block the server's logging when full.
    log_path = cwd / f"gunicorn-{port}.log"
    with log_path.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [str(GUNICORN), "--config", str(CONFIG), *extra_args, "frontend.app:create_app()"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    frontend = Frontend(port, process)
    try:
        _wait_until_listening(process, port)
        yield frontend
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        frontend.output = log_path.read_text(encoding="utf-8")


def _wait_until_listening(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not listen on {port} within {STARTUP_TIMEOUT_S:.0f} s")
