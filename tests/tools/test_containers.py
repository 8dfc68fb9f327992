"""Each image's command, exactly as its Dockerfile writes it, run in the project's environment.

Docker cannot build here, so these tests prove the commands themselves: the files each image
copies are enough, the service starts from its CMD, its HEALTHCHECK passes, and SIGTERM stops it
cleanly. The image's own interpreter is stood in for by this virtualenv's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.envelope import encode, utc_now
from common.reduction import reduce_payload
from tests.conftest import unique_queue_name
from tools.azurite import ACCOUNT_KEY, PROJECT_ROOT, Azurite, free_port
from tools.demo import send
from tools.demo_day import Delivery
from tools.payloads import envelope_for, workflow_job_payload

DOCKER = PROJECT_ROOT / "docker"
SECRET = "container-secret"


def instruction(dockerfile: Path, name: str) -> list[str]:
    """The exec-form JSON array of a Dockerfile instruction (continuation lines joined)."""
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(rf"^{name}\s+(?:.*?\bCMD\s+)?(\[.*\])\s*$", text, re.MULTILINE)
    assert match, f"{dockerfile.name} has no exec-form {name}"
    command: list[str] = json.loads(match.group(1))
    return command


def copied_folders(dockerfile: Path) -> list[str]:
    """The source folders the image copies (`COPY common/ common/` → `common`)."""
    text = dockerfile.read_text(encoding="utf-8")
    return re.findall(r"^COPY\s+(\w+)/\s+\w+/\s*$", text, re.MULTILINE)


def localize(command: list[str]) -> list[str]:
    """Run the image's programs from this virtualenv."""
    programs = {"python": sys.executable, "gunicorn": str(Path(sys.executable).parent / "gunicorn")}
    return [programs.get(command[0], command[0]), *command[1:]]


@pytest.fixture
def image_root(tmp_path: Path) -> Callable[[str], Path]:
    """A folder holding only what the named image copies, like its /app."""

    def build(dockerfile_name: str) -> Path:
        root = tmp_path / "app"
        for folder in copied_folders(DOCKER / dockerfile_name):
            shutil.copytree(
                PROJECT_ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__")
            )
        return root

    return build


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds or fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; killed if the test did not stop them."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_dockerfiles_use_exec_form_and_a_non_root_user() -> None:
    for name in ("frontend.Dockerfile", "backend.Dockerfile"):
        text = (DOCKER / name).read_text(encoding="utf-8")
        assert re.search(r"^USER app$", text, re.MULTILINE), name
        assert instruction(DOCKER / name, "CMD")[0] in {"gunicorn", "python"}
        assert instruction(DOCKER / name, "HEALTHCHECK")[0] == "python"


@pytest.mark.parametrize("name", ["frontend.Dockerfile", "backend.Dockerfile"])
def test_images_copy_product_code_only(name: str, image_root: Callable[[str], Path]) -> None:
    # Given what the image copies, like its /app
    root = image_root(name)
    files = [path for path in root.rglob("*") if path.is_file()]
    # Then it holds no local tooling, no tests and no copy of the emulator's well-known key
    assert sorted(copied_folders(DOCKER / name)) in (["backend", "common"], ["common", "frontend"])
    assert files and not {"tools", "tests", "var"} & {path.parts[len(root.parts)] for path in files}
    assert not [path for path in files if ACCOUNT_KEY[:16] in path.read_text(encoding="utf-8")]


@pytest.mark.azurite
@pytest.mark.slow
def test_frontend_image_command_serves_passes_its_health_check_and_stops_on_sigterm(
    azurite: Azurite,
    image_root: Callable[[str], Path],
    processes: list[subprocess.Popen[bytes]],
) -> None:
    dockerfile = DOCKER / "frontend.Dockerfile"
    root = image_root(dockerfile.name)
    port = free_port()
    queue_name = unique_queue_name("image")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PORT": str(port),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "AZURE_STORAGE_QUEUE_NAME": queue_name,
        "WEB_CONCURRENCY": "1",
    }
    server = subprocess.Popen(localize(instruction(dockerfile, "CMD")), cwd=root, env=env)
    processes.append(server)

    def healthy() -> bool:
        check = subprocess.run(
            localize(instruction(dockerfile, "HEALTHCHECK")), cwd=root, env=env, timeout=30
        )
        return check.returncode == 0

    wait_for(healthy, 30, "the frontend's health check")
    delivery = Delivery(utc_now(), "workflow_job", workflow_job_payload("queued"))
    assert send(delivery, f"http://127.0.0.1:{port}/webhook", SECRET) == 202

    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0


@pytest.mark.azurite
@pytest.mark.slow
def test_backend_image_command_drains_passes_its_health_check_and_stops_on_sigterm(
    azurite: Azurite,
    image_root: Callable[[str], Path],
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    from common.azure_queue import create_queue
    from common.settings import StorageSettings

    dockerfile = DOCKER / "backend.Dockerfile"
    root = image_root(dockerfile.name)
    queue_name = unique_queue_name("image")
    sink = tmp_path / "telemetry.jsonl"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "AZURE_STORAGE_QUEUE_NAME": queue_name,
        "BACKEND_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
        "BACKEND_TELEMETRY_FILE": str(sink),
        "TELEMETRY_SINK": "file",
        "WORKER_PROCESSES": "1",
        "POLL_INTERVAL_SECONDS": "0.2",
    }
    queue = create_queue(StorageSettings(azurite.connection_string, None, queue_name))
    payload = workflow_job_payload("completed")
    envelope = envelope_for(reduce_payload("workflow_job", payload))
    queue.send(encode(envelope))
    worker = subprocess.Popen(localize(instruction(dockerfile, "CMD")), cwd=root, env=env)
    processes.append(worker)

    def health() -> int:
        check = subprocess.run(
            localize(instruction(dockerfile, "HEALTHCHECK")), cwd=root, env=env, timeout=30
        )
        return check.returncode

    wait_for(lambda: sink.exists() and sink.read_text().count("\n") >= 5, 30, "the sink")
    assert health() == 0
    names = [json.loads(line)["name"] for line in sink.read_text().splitlines()]
    assert names == ["WorkflowJob"] + ["WorkflowStep"] * 4

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    queue.close()
