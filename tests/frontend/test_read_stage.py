"""The read stage's hand-over to threads: what a thread does with a request that waited too long."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from frontend.worker import ReadAheadWorker


@dataclass
class _Conn:
    """What `ReadAheadWorker.handle` reads of a connection handed to a thread."""

    sock: socket.socket
    arrived: float
    waiting: bool = True
    waiting_bytes: int = 4096


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair()
    yield server, client
    server.close()
    client.close()


def _worker(waiting: int, waiting_bytes: int) -> ReadAheadWorker:
    # Only the state `handle` reads: no gunicorn arbiter, no loop.
    worker = object.__new__(ReadAheadWorker)
    worker.answer_deadline_s = 5.5
    worker._waiting = waiting
    worker._waiting_bytes = waiting_bytes
    worker._waiting_lock = threading.Lock()
    return worker


def test_a_request_that_waited_past_its_deadline_gets_a_503_without_the_app(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    server, client = pair
    worker = _worker(waiting=3, waiting_bytes=3 * 4096)
    conn = _Conn(server, arrived=time.monotonic() - 6.0)

    keep_alive = worker.handle(conn)

    head, _, body = client.recv(4096).partition(b"\r\n\r\n")
    assert keep_alive is False
    assert head.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: 30" in head
    assert json.loads(body)["error"].startswith("the request waited 6.0 s for a thread")
    # it no longer counts as waiting, once, however often gthread hands it back
    worker.handle(conn)
    assert (worker._waiting, worker._waiting_bytes) == (2, 2 * 4096)
