"""Hostile clients on loopback: slow and idle connections, raw requests, timed deliveries."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# How often a slow client sends its next byte, and how often a closed one reconnects.
TICK_S = 1.0


@dataclass(frozen=True)
class Answer:
    """What a request got: status (0: none), JSON body if any, headers, and seconds taken."""

    status: int
    document: Any
    headers: dict[str, str]
    elapsed_s: float


@dataclass
class Siege:
    """Slow and idle connections held open on one thread, reopened when the server closes them.

    A slow client announces a body and sends one byte of it per tick; an idle one sends nothing.
    """

    port: int
    slow: int
    idle: int
    reopened: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Siege:
        self._thread = threading.Thread(target=self._run, name="siege", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _open(self, slow: bool) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            if slow:
                sock.sendall(
                    b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 10000\r\n\r\n"
                )
            sock.setblocking(False)
            return sock
        except OSError:
            return None

    def _run(self) -> None:
        kinds = [True] * self.slow + [False] * self.idle
        sockets: list[socket.socket | None] = [self._open(kind) for kind in kinds]
        while not self._stop.wait(TICK_S):
            for index, kind in enumerate(kinds):
                sock = sockets[index]
                if sock is None or _is_closed(sock) or (kind and not _send_byte(sock)):
                    if sock is not None:
                        sock.close()
                    sockets[index] = self._open(kind)
                    self.reopened += 1
        for sock in sockets:
            if sock is not None:
                sock.close()


def _is_closed(sock: socket.socket) -> bool:
    try:
        sock.recv(4096)  # an answer or the end of the stream: this attempt is over
    except BlockingIOError:
        return False
    except OSError:
        pass
    return True


def _send_byte(sock: socket.socket) -> bool:
    try:
        return sock.send(b" ") == 1
    except OSError:
        return False


def post(port: int, body: bytes, headers: dict[str, str], timeout_s: float = 15.0) -> Answer:
    """POST /webhook on a fresh connection; status 0 if no answer came within the timeout."""
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("POST", "/webhook", body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, _json(raw), answer_headers, time.monotonic() - started)
    except OSError:
        return Answer(0, None, {}, time.monotonic() - started)
    finally:
        connection.close()


def exchange(port: int, raw: bytes, timeout_s: float = 10.0) -> Answer:
    """Send raw bytes on a fresh connection and read the answer until the server closes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading it all
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    elapsed = time.monotonic() - started
    while received.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue): skip it
        received = received.partition(b"\r\n\r\n")[2]
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        return Answer(0, None, {}, elapsed)
    headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    headers = {name.strip().lower(): value.strip() for name, value in headers.items()}
    return Answer(int(lines[0].split()[1]), _json(body), headers, elapsed)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
