"""`make run`: it starts Azurite, the frontend and the backend, and every way out stops them."""

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
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.envelope import utc_now
from tools.azurite import PROJECT_ROOT, free_port
from tools.demo import send
from tools.demo_day import Delivery
from tools.devstack import child_environment, local_secret, refusal
from tools.payloads import workflow_run_payload
from tools.stack_state import STATE_FILE, StackState, group_alive, read_state

BANNER_END = "Ctrl-C stops everything"


def test_the_local_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "webhook-secret"

    first = local_secret(path)
    second = local_secret(path)

    assert first == second
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_secret(tmp_path / "other") != first


def test_children_get_the_file_sink_and_text_logs_unless_the_user_chose() -> None:
    chosen = child_environment({"BACKEND_TELEMETRY_SINK": "appinsights", "LOG_FORMAT": "json"})
    default = child_environment({})

    assert (default["TELEMETRY_SINK"], default["LOG_FORMAT"]) == ("file", "text")
    assert "TELEMETRY_SINK" not in chosen and chosen["LOG_FORMAT"] == "json"


def test_a_taken_port_stops_make_run_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]

        message = refusal({"HOST": "127.0.0.1", "PORT": str(port)}, tmp_path)

    assert message == (
        f"port {port} on 127.0.0.1 is already in use (another program, or a stack started "
        f"outside `make run`): stop it, or choose another port: `PORT={port + 10000} make run`"
    )


def test_leftovers_of_an_earlier_run_are_named_and_a_dead_state_is_ignored(tmp_path: Path) -> None:
    env = {"HOST": "127.0.0.1", "PORT": str(free_port())}
    # Given a frontend that outlived its `make run` (the runner itself is gone)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "gunicorn"], start_new_session=True
    )
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        StackState(pid=gone.pid, children={"frontend": orphan.pid}).write(tmp_path)
        # Then the next `make run` refuses and says how to stop it
        assert refusal(env, tmp_path) == (
            f"processes of an earlier `make run` are still running (frontend {orphan.pid}): "
            f"stop them with `kill -TERM -- -{orphan.pid}`, then run `make run` again"
        )
    finally:
        orphan.kill()
        orphan.wait()
    # And once they are gone, the state file left behind does not stop it
    assert refusal(env, tmp_path) is None


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _stack_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_STORAGE", "APPLICATIONINSIGHTS", "TELEMETRY_", "LOG_"))
        and "GITHUB_WEBHOOK_SECRET" not in key
    }
    env.update(
        PORT=str(port),
        DEVSTACK_VAR_DIR=str(tmp_path / "var"),
        BACKEND_TELEMETRY_FILE=str(tmp_path / "telemetry.jsonl"),
        BACKEND_HEARTBEAT_FILE=str(tmp_path / "heartbeat"),
        WORKER_PROCESSES="1",
        WEB_CONCURRENCY="1",
        POLL_INTERVAL_SECONDS="0.2",
    )
    return env


class RunningStack:
    """`python -m tools.devstack` (or a variant) in a subprocess, its banner read."""

    def __init__(self, tmp_path: Path, command: list[str]) -> None:
        self.port = free_port()
        self.var = tmp_path / "var"
        self.env = _stack_env(tmp_path, self.port)
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.banner = ""
        assert self.process.stdout is not None
        while BANNER_END not in self.banner:
            line = self.process.stdout.readline()
            assert line, f"the stack exited early: {self.banner}"
            self.banner += line
        state = read_state(self.var)
        assert state is not None
        self.groups = dict(state.children)

    def close(self) -> None:
        """Kill whatever a failed test left."""
        for pgid in [self.process.pid, *self.groups.values()]:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def assert_all_stopped(self) -> None:
        """No child group survives, nothing listens, and the state file is gone."""
        assert sorted(self.groups) == ["azurite", "backend", "frontend"]
        survivors = [name for name, pgid in self.groups.items() if group_alive(pgid)]
        assert survivors == []
        assert not _listening(self.port)
        assert not (self.var / STATE_FILE).exists()


@pytest.fixture
def stacks() -> Iterator[list[RunningStack]]:
    started: list[RunningStack] = []
    yield started
    for stack in started:
        stack.close()


@pytest.mark.slow
def test_the_stack_accepts_a_delivery_into_the_sink_and_ctrl_c_stops_everything(
    tmp_path: Path, stacks: list[RunningStack]
) -> None:
    stack = RunningStack(tmp_path, [sys.executable, "-m", "tools.devstack"])
    stacks.append(stack)
    banner, port, sink = stack.banner, stack.port, tmp_path / "telemetry.jsonl"
    queue_port = int(re.search(r"queue on 127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
    secret = (tmp_path / "var" / "webhook-secret").read_text().strip()
    assert f"secret      : {secret}" in banner
    assert f"webhook URL : http://127.0.0.1:{port}/webhook" in banner
    # The banner comes once the frontend answers, and make demo finds the URL in var/
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as health:
        assert health.status == 200
    state = json.loads((tmp_path / "var" / STATE_FILE).read_text())
    assert (state["url"], state["telemetry"]) == (f"http://127.0.0.1:{port}/webhook", str(sink))

    delivery = Delivery(utc_now(), "workflow_run", workflow_run_payload("completed"))
    assert send(delivery, f"http://127.0.0.1:{port}/webhook", secret) == 202
    deadline = time.monotonic() + 30
    while not (sink.exists() and sink.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    [item] = [json.loads(line) for line in sink.read_text().splitlines()]
    assert item["name"] == "WorkflowRun"

    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    assert stack.process.stdout is not None
    assert "stopped." in stack.process.stdout.read()
    stack.assert_all_stopped()
    assert not _listening(queue_port)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_every_child(
    tmp_path: Path, stacks: list[RunningStack], signum: int
) -> None:
    stack = RunningStack(tmp_path, [sys.executable, "-m", "tools.devstack"])
    stacks.append(stack)

    stack.process.send_signal(signum)

    assert stack.process.wait(timeout=60) == 0
    stack.assert_all_stopped()


@pytest.mark.slow
def test_a_second_make_run_beside_a_running_one_refuses_and_leaves_it_alone(
    tmp_path: Path, stacks: list[RunningStack]
) -> None:
    stack = RunningStack(tmp_path, [sys.executable, "-m", "tools.devstack"])
    stacks.append(stack)

    second = subprocess.run(
        [sys.executable, "-m", "tools.devstack"],
        cwd=PROJECT_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode == 1
    assert second.stdout.strip() == (
        f"make run: `make run` is already going (pid {stack.process.pid}, "
        f"http://127.0.0.1:{stack.port}/webhook): use it, or stop it first (Ctrl-C in its "
        f"terminal, or `kill {stack.process.pid}`)"
    )
    assert "Azurite" not in second.stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/health", timeout=5) as health:
        assert health.status == 200
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    stack.assert_all_stopped()


@pytest.mark.slow
def test_a_closed_output_pipe_does_not_cut_the_cleanup_short(
    tmp_path: Path, stacks: list[RunningStack]
) -> None:
    # Given `make run | tee log`, where Ctrl-C ends tee first
    stack = RunningStack(tmp_path, [sys.executable, "-m", "tools.devstack"])
    stacks.append(stack)
    assert stack.process.stdout is not None
    stack.process.stdout.close()

    stack.process.send_signal(signal.SIGINT)

    assert stack.process.wait(timeout=60) == 0
    stack.assert_all_stopped()


@pytest.mark.slow
def test_a_crash_of_the_runner_still_stops_every_child(
    tmp_path: Path, stacks: list[RunningStack]
) -> None:
    # Given a runner whose watch loop raises (a bug of its own) once the stack is up
    crash = "import tools.devstack as d; d.WATCH_INTERVAL_S = 'boom'; raise SystemExit(d.main())"
    stack = RunningStack(tmp_path, [sys.executable, "-c", crash])
    stacks.append(stack)

    assert stack.process.wait(timeout=60) == 1
    stack.assert_all_stopped()
