"""`make run`: Azurite, the frontend under gunicorn and the backend pool on this machine.

Telemetry goes to the local JSONL sink (`TELEMETRY_SINK=file`) unless the environment asks for
App Insights; Azure Storage settings in the environment (or `.env`) replace the local Azurite.
Ctrl-C, SIGTERM, SIGHUP, a closed output pipe or a crash of this runner all stop the three:
frontend first so nothing new arrives, then the backend so it settles its batch, then Azurite.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from backend.settings import FILE_SINK, telemetry_file
from common.settings import BACKEND_PREFIX, EnvReader, environment
from tools.azurite import PROJECT_ROOT, Azurite
from tools.stack_state import StackState, is_listening, leftovers, read_state, remove_state

STOP_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 60.0
WATCH_INTERVAL_S = 0.5
EXIT_STALE = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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


def say(text: str) -> None:
    """Print, and keep going when nobody reads any more (`make run | tee` after Ctrl-C)."""
    try:
        print(text, flush=True)
    except (BrokenPipeError, OSError, ValueError):
        # Python's advice for a closed pipe: point stdout at devnull so later writes are
        # silent too. https://docs.python.org/3/library/signal.html#note-on-sigpipe
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())


def _has_storage(env: dict[str, str]) -> bool:
    names = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME")
    reader = EnvReader(env, BACKEND_PREFIX)
    return any(reader.text(name) for name in names)


class _Interrupted(BaseException):
    """A stop signal reached the stack runner."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


class Stack:
    """The children of one `make run`, each the leader of its own process group."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.state = StackState(pid=os.getpid())
        self.azurite: Azurite | None = None
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._stopped = False

    def start_azurite(self) -> str:
        """Start the local Azurite on the state folder; return its connection string."""
        self.azurite = Azurite(workspace=self.state_dir / "azurite")
        try:
            self.azurite.start()
        finally:
            if self.azurite.pid is not None:
                self.state.children["azurite"] = self.azurite.pid
                self.state.write(self.state_dir)
        data = self.state_dir / "azurite"
        say(f"Azurite: queue on 127.0.0.1:{self.azurite.queue_port} (data in {data})")
        return self.azurite.connection_string

    def spawn(self, name: str, command: list[str], env: dict[str, str]) -> None:
        """Start a child in a process group of its own, so stopping it stops all it started."""
        # A session of its own: the terminal's Ctrl-C reaches only this runner, which stops
        # the children in order instead of all at once.
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, start_new_session=True)
        self.children.append((name, process))
        self.state.children[name] = process.pid
        self.state.write(self.state_dir)

    def exited(self) -> list[tuple[str, int]]:
        """The children that have exited, with their status."""
        return [
            (name, process.returncode)
            for name, process in self.children
            if process.poll() is not None
        ]

    def stop(self) -> None:
        """Stop every child, then Azurite; safe to call again (atexit calls it too)."""
        if self._stopped:
            return
        self._stopped = True
        for name, process in self.children:
            _stop_group(process, name)
        if self.azurite is not None:
            say("stopping Azurite ...")
            self.azurite.stop()
        remove_state(self.state_dir, self.state.pid)
        say("stopped.")


def _stop_group(process: subprocess.Popen[bytes], name: str) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after STOP_TIMEOUT_S."""
    if process.poll() is None:
        say(f"stopping {name} ...")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop within {STOP_TIMEOUT_S:.0f} s: killing it")
    # Whatever the leader left behind in its group goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def wait_until_healthy(url: str, stack: Stack, timeout_s: float = HEALTH_TIMEOUT_S) -> bool:
    """Poll the frontend's /health until it answers 200; False if a child exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stack.exited():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """What the children run with: a local sink and readable logs unless the user chose."""
    env.setdefault("PORT", "8080")
    env.setdefault("HOST", "127.0.0.1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("LOG_FORMAT", "text")
    if not EnvReader(env, BACKEND_PREFIX).text("TELEMETRY_SINK"):
        env["TELEMETRY_SINK"] = FILE_SINK
    return env


def _probe_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def refusal(env: dict[str, str], state_dir: Path) -> str | None:
    """Why this `make run` must not start: an earlier one still runs, or the port is taken."""
    state = read_state(state_dir)
    message = leftovers(state) if state is not None else None
    if message:
        return message
    host, port = _probe_host(env["HOST"]), int(env["PORT"])
    if is_listening(host, port):
        return (
            f"port {port} on {host} is already in use (another program, or a stack started "
            f"outside `make run`): stop it, or choose another port: `PORT={port + 10000} make run`"
        )
    return None


def run(stack: Stack, env: dict[str, str]) -> int:
    """Start the stack, print the banner once the frontend answers, and watch the children."""
    if not _has_storage(env):
        env["AZURE_STORAGE_CONNECTION_STRING"] = stack.start_azurite()
    else:
        stack.state.local_queue = False
    if not env.get("GITHUB_WEBHOOK_SECRET"):
        env["GITHUB_WEBHOOK_SECRET"] = local_secret(stack.state_dir / "webhook-secret")
    appinsights = EnvReader(env, BACKEND_PREFIX).text("APPLICATIONINSIGHTS_CONNECTION_STRING")
    sink = EnvReader(env, BACKEND_PREFIX).text("TELEMETRY_SINK")
    stack.state.telemetry = str(telemetry_file(env)) if sink == FILE_SINK else None
    frontend = [sys.executable, "-m", "gunicorn", "--config", "frontend/gunicorn.conf.py"]
    stack.spawn("frontend", [*frontend, "frontend.app:create_app()"], env)
    stack.spawn("backend", [sys.executable, "-m", "backend"], env)
    base = f"http://{_probe_host(env['HOST'])}:{env['PORT']}"
    if not wait_until_healthy(f"{base}/health", stack):
        for name, code in stack.exited() or [("frontend", -1)]:
            say(f"{name} did not start (exit status {code}); see its message above")
        return 1
    stack.state.url = f"{base}/webhook"
    stack.state.write(stack.state_dir)
    shown_sink = stack.state.telemetry or "Application Insights"
    if stack.state.telemetry and appinsights:
        shown_sink += " (TELEMETRY_SINK=file: App Insights is not used)"
    say(
        "\n"
        f"  webhook URL : {stack.state.url}\n"
        f"  secret      : {env['GITHUB_WEBHOOK_SECRET'].split(',')[0]}\n"
        f"  telemetry   : {shown_sink}\n"
        "  try it      : make demo   (GitHub itself: see the README, 'Point GitHub at it')\n"
        "  Ctrl-C stops everything.\n"
    )
    while not stack.exited():
        time.sleep(WATCH_INTERVAL_S)
    for name, code in stack.exited():
        say(f"{name} exited with {code}; stopping the rest")
    return 1


def main() -> int:
    """Run the local stack until a stop signal; every way out stops every child."""
    env = child_environment(environment(PROJECT_ROOT / ".env"))
    state_dir = var_dir(env)
    message = refusal(env, state_dir)
    if message:
        say(f"make run: {message}")
        return EXIT_STALE
    stack = Stack(state_dir)
    atexit.register(stack.stop)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    try:
        stack.state.write(state_dir)
        return run(stack, env)
    except _Interrupted:
        return 0
    finally:
        # A second Ctrl-C (make forwards one) must not cut the cleanup short.
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
