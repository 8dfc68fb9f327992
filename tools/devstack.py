"""`make run`: Azurite, the frontend under gunicorn and the backend pool on this machine.

Telemetry goes to the local JSONL sink unless App Insights is configured; Azure Storage settings
in the environment (or `.env`) replace the local Azurite. Ctrl-C stops all three, frontend first
so nothing new arrives, then the backend so it settles its batch, then Azurite.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from backend.settings import telemetry_file
from common.settings import BACKEND_PREFIX, EnvReader, environment
from tools.azurite import PROJECT_ROOT, Azurite

STOP_TIMEOUT_S = 30.0


def var_dir(env: dict[str, str]) -> Path:
    """Where the local stack keeps its state: `DEVSTACK_VAR_DIR`, else `var/` in the checkout."""
    return Path(env.get("DEVSTACK_VAR_DIR") or PROJECT_ROOT / "var")


def local_secret(path: Path) -> str:
    """The local webhook secret: generated once, kept at `path` (mode 0600), never a constant."""
    if path.exists():
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret


def _has_storage(env: dict[str, str]) -> bool:
    names = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME")
    reader = EnvReader(env, BACKEND_PREFIX)
    return any(reader.text(name) for name in names)


def _stop(process: subprocess.Popen[bytes], name: str) -> None:
    if process.poll() is not None:
        return
    print(f"stopping {name} ...", flush=True)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Interrupted(BaseException):
    """Ctrl-C or SIGTERM reached the stack runner."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


def main() -> int:
    """Run the local stack until Ctrl-C."""
    env = environment(PROJECT_ROOT / ".env")
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    azurite: Azurite | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    state = var_dir(env)
    try:
        if not _has_storage(env):
            azurite = Azurite(workspace=state / "azurite").start()
            env["AZURE_STORAGE_CONNECTION_STRING"] = azurite.connection_string
            print(f"Azurite: queue on 127.0.0.1:{azurite.queue_port} (data in {state / 'azurite'})")
        if not env.get("GITHUB_WEBHOOK_SECRET"):
            env["GITHUB_WEBHOOK_SECRET"] = local_secret(state / "webhook-secret")
        env.setdefault("PORT", "8080")
        env.setdefault("HOST", "127.0.0.1")
        env.setdefault("PYTHONUNBUFFERED", "1")
        sink = "Application Insights"
        if not EnvReader(env, BACKEND_PREFIX).text("APPLICATIONINSIGHTS_CONNECTION_STRING"):
            sink = str(telemetry_file(env))
        frontend = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "frontend/gunicorn.conf.py",
            "frontend.app:create_app()",
        ]
        backend = [sys.executable, "-m", "backend"]
        for name, command in (("frontend", frontend), ("backend", backend)):
            process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True)
            children.append((name, process))
        secret = env["GITHUB_WEBHOOK_SECRET"].split(",")[0]
        print(
            "\n"
            f"  webhook URL : http://{env['HOST']}:{env['PORT']}/webhook\n"
            f"  secret      : {secret}\n"
            f"  telemetry   : {sink}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while all(process.poll() is None for _, process in children):
            time.sleep(0.5)
        for name, process in children:
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping the rest", flush=True)
        return 1
    except _Interrupted:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name, process in children:
            _stop(process, name)
        if azurite is not None:
            print("stopping Azurite ...", flush=True)
            azurite.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
