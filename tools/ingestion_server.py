"""A local stand-in for the Application Insights ingestion API, on a free loopback port.

Speaks `POST /v2/track` and `/v2.1/track` (JSON array or newline-delimited JSON, plain or
gzip), answers like the real service, records what it accepted, and fails on demand.
https://learn.microsoft.com/en-us/azure/azure-monitor/app/api-custom-events-metrics
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.azurite import free_port

TRACK_PATHS = frozenset({"/v2/track", "/v2.1/track"})
Envelope = dict[str, Any]


def parse_body(body: bytes, content_encoding: str) -> list[Envelope]:
    """Read a track request body: gzip or plain, a JSON array or one JSON object per line."""
    if content_encoding.lower() == "gzip":
        body = gzip.decompress(body)
    text = body.decode("utf-8").strip()
    if text.startswith("["):
        document = json.loads(text)
        return [item for item in document if isinstance(item, dict)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class IngestionServer:
    """The fake ingestion endpoint; `accepted` holds every envelope it took, in order.

    Failure modes, each until `recover()`:
      - `refuse()`: stop listening, so connections are refused;
      - `answer(status, retry_after=None)`: answer every request with that status;
      - `reject(predicate, status=400)`: answer 206 (or 400 when none is left), with a
        per-item error for each envelope the predicate picks;
      - `delay_s`: wait that long before answering (a slow ingestion).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.instrumentation_key = str(uuid.uuid4())
        self.accepted: list[Envelope] = []
        self.requests: list[tuple[str, int]] = []  # (path, status) of each answered request
        self._status: int | None = None
        self._retry_after: str | None = None
        self._reject: Callable[[Envelope], bool] | None = None
        self._reject_status = 400
        self.delay_s = 0.0
        self.received = 0  # track requests that arrived, answered or not yet
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The base URL, as an `IngestionEndpoint` names it."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def connection_string(self) -> str:
        """A connection string pointing at this server."""
        return f"InstrumentationKey={self.instrumentation_key};IngestionEndpoint={self.endpoint}"

    def start(self) -> IngestionServer:
        """Listen on the server's port."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused until `start()`)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def refuse(self) -> None:
        """Refuse connections, as a host that is down does."""
        self.stop()

    def answer(self, status: int, retry_after: str | None = None) -> None:
        """Answer every track request with `status` and accept nothing."""
        with self._lock:
            self._status, self._retry_after = status, retry_after
        if self._server is None:
            self.start()

    def reject(self, predicate: Callable[[Envelope], bool], status: int = 400) -> None:
        """Fail the envelopes `predicate` picks with a per-item `status`; accept the rest."""
        with self._lock:
            self._reject, self._reject_status = predicate, status

    def recover(self) -> None:
        """Listen again and accept everything."""
        with self._lock:
            self._status, self._retry_after, self._reject = None, None, None
        if self._server is None:
            self.start()

    def events(self) -> list[Envelope]:
        """Accepted custom events (envelopes of base type EventData)."""
        with self._lock:
            return [e for e in self.accepted if e.get("data", {}).get("baseType") == "EventData"]

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        """Poll `condition` until it holds, failing the test after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout_s:.0f} s")
            time.sleep(0.05)

    def _respond(self, envelopes: list[Envelope]) -> tuple[int, dict[str, Any], str | None]:
        with self._lock:
            if self._status is not None:
                return (
                    self._status,
                    {"itemsReceived": len(envelopes), "itemsAccepted": 0, "errors": []},
                    self._retry_after,
                )
            errors = [
                {"index": index, "statusCode": self._reject_status, "message": "rejected by test"}
                for index, envelope in enumerate(envelopes)
                if self._reject is not None and self._reject(envelope)
            ]
            failed = {error["index"] for error in errors}
            taken = [e for index, e in enumerate(envelopes) if index not in failed]
            self.accepted.extend(taken)
        status = 200 if not errors else (206 if taken else 400)
        document = {"itemsReceived": len(envelopes), "itemsAccepted": len(taken), "errors": errors}
        return status, document, None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path not in TRACK_PATHS:
                    self._send(404, {"error": "unknown path"}, None)
                    return
                try:
                    envelopes = parse_body(body, self.headers.get("Content-Encoding", ""))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    self._send(400, {"itemsReceived": 0, "itemsAccepted": 0, "errors": []}, None)
                    return
                with owner._lock:
                    owner.received += 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                status, document, retry_after = owner._respond(envelopes)
                self._send(status, document, retry_after)

            def _send(self, status: int, document: dict[str, Any], retry_after: str | None) -> None:
                data = json.dumps(document).encode("utf-8")
                with owner._lock:
                    owner.requests.append((self.path, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Keep test output quiet."""

        return Handler
