"""`make demo`: it finds the running stack, refuses what is not local, and fails when it fails."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tools.azurite import free_port
from tools.demo import DEFAULT_SEED, build_parser, main
from tools.demo_day import build_scenario
from tools.stack_state import StackState

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No Azure settings, no `.env`, `var/` in a temporary folder."""
    for name in ("AZURE_", "APPLICATIONINSIGHTS", "BACKEND_", "TELEMETRY_", "DEMO_URL"):
        for key in [key for key in os.environ if key.startswith(name)]:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVSTACK_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "demo-secret")
    return tmp_path


class _Frontend(BaseHTTPRequestHandler):
    """Answers /health and accepts every delivery, like a frontend whose backend is stuck."""

    posts = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts += 1
        self.send_response(202)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def frontend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Frontend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Frontend.posts = 0
    yield f"http://127.0.0.1:{server.server_address[1]}/webhook"
    server.shutdown()
    server.server_close()


def test_the_day_is_the_same_every_time_unless_a_seed_is_given() -> None:
    assert build_parser().parse_args([]).seed == DEFAULT_SEED
    assert build_parser().parse_args(["--seed", "7"]).seed == 7
    first, again = build_scenario(DEFAULT_SEED, 3, NOW), build_scenario(DEFAULT_SEED, 3, NOW)
    assert first.deliveries == again.deliveries
    assert build_scenario(7, 3, NOW).deliveries != first.deliveries


def test_nothing_listening_gives_a_one_line_hint(
    clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook"

    assert main(["--url", url]) == 1

    assert capsys.readouterr().err == f"make demo: nothing answers at {url}: is `make run` going?\n"


@pytest.mark.parametrize(
    ("variables", "remote"),
    [
        ({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}, "Application Insights"),
        ({"AZURE_STORAGE_ACCOUNT_NAME": "prodaccount"}, "the queue (not Azurite)"),
    ],
)
def test_made_up_data_is_not_sent_to_azure_without_yes(
    clean_env: Path,
    frontend: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    remote: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    assert main(["--url", frontend]) == 2

    assert capsys.readouterr().err == (
        f"make demo: refusing to send made-up deliveries to {remote}; pass --yes "
        "(DEMO_ARGS=--yes) if that is what you want\n"
    )
    assert _Frontend.posts == 0


def test_the_stack_of_make_run_is_found_in_var_and_its_sink_trusted(
    clean_env: Path, frontend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given `make run` wrote its URL, its App Insights sink and a local queue into var/
    StackState(pid=1, url=frontend, telemetry=None).write(clean_env / "var")

    refused = main([])
    sent = main(["--yes", "--runs", "1"])

    assert (refused, sent) == (2, 0)
    out = capsys.readouterr().out
    assert f"to {frontend}" in out
    assert "telemetry goes to Application Insights: no local summary to check" in out
    assert _Frontend.posts == len(build_scenario(DEFAULT_SEED, 1).deliveries)


def test_a_summary_that_does_not_match_exits_non_zero(
    clean_env: Path,
    frontend: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a frontend that accepts every delivery but whose telemetry never arrives
    sink = clean_env / "telemetry.jsonl"
    sink.touch()
    monkeypatch.setenv("DEMO_URL", frontend)

    code = main(["--runs", "2", "--telemetry-file", str(sink), "--timeout", "0.5"])

    assert code == 1
    captured = capsys.readouterr()
    assert "The summary DOES NOT match what was sent." in captured.out
    assert f"make demo: the telemetry in {sink} does not add up to what was sent" in captured.err
