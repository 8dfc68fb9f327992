"""A local stand-in for the Azure queue endpoint that answers as a test scripts it."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.azurite import ACCOUNT_KEY, ACCOUNT_NAME

# Answers, one per request in order; the last one repeats.
OK = "ok"  # what Azure answers: 201 + the Put Message XML, 200 to a properties request
NOT_FOUND = "not_found"  # a 404 with no x-ms-error-code: not a queue endpoint at all
TRICKLE = "trickle"  # a valid answer, one byte every TRICKLE_INTERVAL_S
BUSY = "busy"  # 503 ServerBusy: the service asks the caller to come back
GARBLED = "garbled"  # a 201 whose body is not the Put Message XML
UNAUTHORIZED = "unauthorized"  # a 401 with a bearer challenge, as for a token of another tenant

TRICKLE_INTERVAL_S = 0.5

_PUT_MESSAGE_XML = (
    b'<?xml version="1.0" encoding="utf-8"?><QueueMessagesList><QueueMessage>'
    b"<MessageId>stub-message</MessageId>"
    b"<InsertionTime>Tue, 05 Mar 2024 10:00:00 GMT</InsertionTime>"
    b"<ExpirationTime>Tue, 12 Mar 2024 10:00:00 GMT</ExpirationTime>"
    b"<PopReceipt>stub-receipt</PopReceipt>"
    b"<TimeNextVisible>Tue, 05 Mar 2024 10:00:00 GMT</TimeNextVisible>"
    b"</QueueMessage></QueueMessagesList>"
)


class StorageServer(ThreadingHTTPServer):
    """Serves the scripted answers; `requests` counts what arrived, `connections` over what."""

    daemon_threads = True

    def __init__(self, answers: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = deque(answers)
        self.requests = 0
        self.connections = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Count the accepted connection, then serve it on its own thread."""
        with self._lock:
            self.connections += 1
        super().process_request(request, client_address)

    def next_answer(self) -> str:
        with self._lock:
            self.requests += 1
            return self.answers.popleft() if len(self.answers) > 1 else self.answers[0]

    @property
    def connection_string(self) -> str:
        """An account-key connection string whose queue endpoint is this server."""
        port = self.server_address[1]
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"QueueEndpoint=http://127.0.0.1:{port}/{ACCOUNT_NAME};"
        )


class _Handler(BaseHTTPRequestHandler):
    server: StorageServer
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.next_answer()
        if answer == NOT_FOUND:
            self._write(b"HTTP/1.1 404 The specified resource does not exist.\r\n", b"")
            return
        if answer == BUSY:
            self._write(b"HTTP/1.1 503 Server Busy\r\nx-ms-error-code: ServerBusy\r\n", b"")
            return
        if answer == UNAUTHORIZED:
            challenge = b'WWW-Authenticate: Bearer authorization_uri="https://login.example/t"'
            self._write(b"HTTP/1.1 401 Unauthorized\r\n" + challenge + b"\r\n", b"")
            return
        if answer == GARBLED:
            self._write(b"HTTP/1.1 201 Created\r\nContent-Type: application/xml\r\n", b"<html>")
            return
        body = _PUT_MESSAGE_XML if self.command == "POST" else b""
        status = b"201 Created" if self.command in {"POST", "PUT"} else b"200 OK"
        head = b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\n"
        if answer == TRICKLE:
            self._trickle(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        else:
            self._write(head, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def _write(self, head: bytes, body: bytes) -> None:
        self.wfile.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def _trickle(self, response: bytes) -> None:
        for index in range(len(response)):
            if self.server.stopping.wait(TRICKLE_INTERVAL_S):
                return
            self.wfile.write(response[index : index + 1])
            self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


@contextmanager
def storage_server(*answers: str) -> Iterator[StorageServer]:
    """Run a server answering `answers` in order (the last repeats) until the block ends."""
    server = StorageServer(list(answers) or [OK])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
