"""The front door holds under real gunicorn: slow and idle clients, a hanging queue, huge bodies.

Each attack runs for real on loopback against the frontend's gunicorn (2 workers x 8 threads,
as deployed), for a bounded time, while signed deliveries keep arriving.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import unique_queue_name
from tests.frontend.attacks import Answer, Siege, post
from tests.frontend.deliveries import github_headers, json_body
from tests.frontend.server import Frontend, frontend_environment, running_frontend
from tools.azurite import Azurite
from tools.payloads import workflow_job_payload

pytestmark = [pytest.mark.slow, pytest.mark.azurite]

BODY = json_body(workflow_job_payload("completed"))
MB = 1024 * 1024
BURST = 400
CROWD = 160


def _signed_delivery(port: int, timeout_s: float = 15.0) -> Answer:
    headers = github_headers(BODY, "workflow_job", delivery_id=str(uuid.uuid4()))
    return post(port, BODY, headers, timeout_s)


@contextmanager
def _frontend(azurite: Azurite, home: Path, **values: str) -> Iterator[Frontend]:
    env = frontend_environment(
        home,
        AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string,
        AZURE_STORAGE_QUEUE_NAME=unique_queue_name("door"),
        **values,
    )
    with running_frontend(env, home) as frontend:
        assert _signed_delivery(frontend.port).status == 202  # the queue exists, threads warm
        yield frontend


def test_slow_and_idle_clients_leave_every_delivery_answered_within_3_s(
    azurite: Azurite, tmp_path: Path
) -> None:
    with _frontend(azurite, tmp_path) as frontend:
        # Given 40 clients trickling a body a byte a second and 200 sending nothing,
        with Siege(frontend.port, slow=40, idle=200) as siege:
            time.sleep(1.0)
            answers: list[Answer] = []
            end = time.monotonic() + 12.0
            # When signed deliveries arrive meanwhile, for longer than the read deadline,
            while time.monotonic() < end:
                answers.append(_signed_delivery(frontend.port, timeout_s=10.0))
        reopened = siege.reopened

    # Then each one is queued and answered within 3 s,
    late = [(answer.status, round(answer.elapsed_s, 2)) for answer in answers]
    assert [a for a in late if a[0] != 202 or a[1] > 3.0] == []
    assert len(answers) >= 20
    # and the attackers' connections were closed at the read deadline, not kept.
    assert reopened >= 200


def test_a_burst_of_400_deliveries_at_once_is_queued_not_refused(
    azurite: Azurite, tmp_path: Path
) -> None:
    # Given the deployed frontend (packing on),
    with _frontend(azurite, tmp_path, FRONTEND_PACKING="true") as frontend:
        start = threading.Barrier(BURST, timeout=30.0)

        def deliver(_: int) -> Answer:
            start.wait()
            return _signed_delivery(frontend.port, timeout_s=12.0)

        # when 400 deliveries arrive together on connections of their own (a large matrix
        # of jobs starting at once),
        with ThreadPoolExecutor(BURST) as pool:
            answers = list(pool.map(deliver, range(BURST)))

    # then each one waits its turn for a thread and is queued, none refused,
    statuses = Counter(answer.status for answer in answers)
    assert statuses == {202: BURST}, statuses
    # within the answer budget (5.5 s from arrival) and its margin.
    assert max(answer.elapsed_s for answer in answers) < 7.0


def test_a_15_s_queue_hang_gets_every_request_a_503_within_7_s(
    private_azurite: Azurite, tmp_path: Path
) -> None:
    with _frontend(private_azurite, tmp_path) as frontend:
        node = private_azurite._process.pid  # type: ignore[union-attr]
        answers: list[tuple[float, Answer]] = []
        lock = threading.Lock()
        hang_ends = time.monotonic() + 15.0

        def keep_sending() -> None:
            while time.monotonic() < hang_ends:
                sent = time.monotonic()
                answer = _signed_delivery(frontend.port, timeout_s=12.0)
                with lock:
                    answers.append((sent, answer))

        # Given a queue that stops answering for 15 s,
        os.kill(node, signal.SIGSTOP)
        try:
            # when 100 connections keep sending deliveries all along,
            with ThreadPoolExecutor(100) as pool:
                for _ in range(100):
                    pool.submit(keep_sending)
        finally:
            os.kill(node, signal.SIGCONT)
        after = _signed_delivery(frontend.port)

    # then every answer left within 7 s of its sending, a 503 with Retry-After, never a 500,
    slowest = max(answer.elapsed_s for _, answer in answers)
    statuses = {answer.status for _, answer in answers}
    assert slowest <= 7.0, f"an answer took {slowest:.1f} s"
    assert statuses <= {202, 503}, statuses
    assert 503 in statuses
    assert all(answer.headers.get("retry-after") for _, answer in answers if answer.status == 503)
    assert len(answers) >= 100
    # and once the queue answers again, so does the frontend.
    assert after.status == 202


def test_32_bodies_of_25_mb_with_a_bad_signature_are_refused_in_bounded_memory(
    azurite: Azurite, tmp_path: Path
) -> None:
    body = b'{"action": "completed", "padding": "' + b"x" * (25 * MB - 64) + b'"}'
    headers = {
        **github_headers(b"", "workflow_job"),  # the signature of another body
        "Content-Type": "application/json",
    }
    # The longest deadlines: 800 MB at once through a loaded machine's loopback may take
    # longer than the default answer budget to arrive, and would then be shed with a 503.
    deadlines = {"FRONTEND_READ_DEADLINE_SECONDS": "9", "FRONTEND_ANSWER_DEADLINE_SECONDS": "9"}
    with _frontend(azurite, tmp_path, **deadlines) as frontend:
        peak: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                peak.append(max(frontend.worker_rss_bytes(), default=0))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda _: post(frontend.port, body, headers, 60.0), range(32)))
        done.set()
        sampler.join()

    assert [answer.status for answer in answers] == [401] * 32
    assert answers[0].document == {"error": "X-Hub-Signature-256 does not match the body"}
    assert max(peak) < 200 * MB, f"a worker reached {max(peak) // MB} MB"


def test_bodies_waiting_for_a_thread_are_bounded_in_bytes(
    private_azurite: Azurite, tmp_path: Path
) -> None:
    body = b'{"action": "completed", "padding": "' + b"x" * (MB - 64) + b'"}'
    unsigned = {**github_headers(b"", "workflow_job"), "Content-Type": "application/json"}
    with _frontend(private_azurite, tmp_path) as frontend:
        node = private_azurite._process.pid  # type: ignore[union-attr]
        # Given every thread of both workers waiting on a queue that stopped answering,
        os.kill(node, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(40 + CROWD) as pool:
                held = [pool.submit(_signed_delivery, frontend.port, 12.0) for _ in range(40)]
                time.sleep(1.0)
                # when a crowd of 1 MB bodies arrives behind them (160 MB in all),
                crowd = list(
                    pool.map(lambda _: post(frontend.port, body, unsigned, 12.0), range(CROWD))
                )
                os.kill(node, signal.SIGCONT)
                signed = [future.result() for future in held]
        finally:
            os.kill(node, signal.SIGCONT)

    # then past 64 MB waiting in a worker the rest are refused at once, as JSON,
    refused = [answer.document["error"] for answer in crowd if answer.status == 503]
    assert any("MB) already wait for a thread" in error for error in refused), refused
    # and the others are answered once a thread is free: none is lost without an answer.
    assert {answer.status for answer in crowd} <= {401, 503}
    assert {answer.status for answer in signed} <= {202, 503}
