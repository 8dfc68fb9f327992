"""A local stand-in for the Application Insights ingestion API, on a free loopback port.

Speaks `POST /v2/track` and `/v2.1/track` (JSON array or newline-delimited JSON, plain or
gzip) and applies the service's rules by default, so tests catch what a lenient fake hides:

- an item whose `iKey` is not the instrumentation key is refused: 400 "Invalid instrumentation
  key" (the whole answer is 400 when every item is refused, else 206 with per-item errors);
- an item whose `time` is more than 48 hours before the server's clock is refused: 400 "103:
  Field 'time' on type 'Envelope' is older than the allowed min date...";
- a request of more than `max_request_items` items or `max_request_bytes` bytes gets 413;
- with `require_token(token)`, a request without a bearer token gets 401, a wrong one 403;
- with `location` set, every track request is redirected there (307), as a regional endpoint may;
- with `require_entra_id(principals)`, as the service does with local authentication off, a
  request needs a bearer JWT for Azure Monitor: none, or one that is malformed, expired, not yet
  valid or for another audience, gets 401; one whose principal (`oid`) holds no publishing role
  here gets 403 (`grant(principal)` gives it one). Signatures are not checked.

https://learn.microsoft.com/en-us/azure/azure-monitor/app/api-custom-events-metrics
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.azurite import free_port

TRACK_PATHS = frozenset({"/v2/track", "/v2.1/track"})
Envelope = dict[str, Any]
MAX_AGE = timedelta(hours=48)
INVALID_KEY_MESSAGE = "Invalid instrumentation key"
TOO_OLD_MESSAGE = (
    "103: Field 'time' on type 'Envelope' is older than the allowed min date. "
    "Expected: now - 172800000ms"
)
# The stand-in's own request bounds; the sink's are no larger, so by default only tests that
# lower them meet a 413.
DEFAULT_MAX_REQUEST_ITEMS = 1000
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# The audience of a token for Azure Monitor, with or without its trailing slash.
MONITOR_AUDIENCES = frozenset({"https://monitor.azure.com/", "https://monitor.azure.com"})


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT, unverified; None if `token` is not shaped like one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


@dataclass(frozen=True)
class Scripted:
    """One canned answer: its status, raw body, `Retry-After`, and whether it took the items."""

    status: int
    body: bytes = b'{"itemsReceived":0,"itemsAccepted":0,"errors":[]}'
    retry_after: str | None = None
    accept: bool = False


def parse_body(body: bytes, content_encoding: str) -> list[Envelope]:
    """Read a track request body: gzip or plain, a JSON array or one JSON object per line."""
    if content_encoding.lower() == "gzip":
        body = gzip.decompress(body)
    text = body.decode("utf-8").strip()
    if text.startswith("["):
        document = json.loads(text)
        return [item for item in document if isinstance(item, dict)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _time_of(envelope: Envelope) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(envelope.get("time", "")))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class IngestionServer:
    """The strict ingestion stand-in; `accepted` holds every envelope it took, in order.

    Failure modes, each until `recover()`:
      - `refuse()`: stop listening, so connections are refused;
      - `answer(status, retry_after=None)`: answer every request with that status;
      - `script(*answers)`: answer the next requests with these, in order;
      - `reject(predicate, status=400, message=...)`: a per-item error for each envelope the
        predicate picks;
      - `delay_s`: wait that long before answering (a slow ingestion).
    """

    def __init__(
        self,
        max_request_items: int = DEFAULT_MAX_REQUEST_ITEMS,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self.port = free_port()
        self.instrumentation_key = str(uuid.uuid4())
        self.max_request_items = max_request_items
        self.max_request_bytes = max_request_bytes
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.accepted: list[Envelope] = []
        self.requests: list[tuple[str, int]] = []  # (path, status) of each answered request
        self.token: str | None = None
        self.principals: set[str] | None = None  # Entra ID required: who may publish
        self.location: str | None = None  # track requests are redirected (307) there
        self._status: int | None = None
        self._retry_after: str | None = None
        self._script: list[Scripted] = []
        self._reject: Callable[[Envelope], bool] | None = None
        self._reject_status = 400
        self._reject_message = "rejected by test"
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
        """A connection string pointing at this server with its instrumentation key."""
        return self.connection_string_with(self.instrumentation_key)

    def connection_string_with(self, key: str) -> str:
        """A connection string pointing at this server with another (well-formed) key."""
        return f"InstrumentationKey={key};IngestionEndpoint={self.endpoint}"

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

    def script(self, *answers: Scripted) -> None:
        """Answer the next track requests with `answers`, one each, then by the rules again."""
        with self._lock:
            self._script.extend(answers)

    def reject(
        self,
        predicate: Callable[[Envelope], bool],
        status: int = 400,
        message: str = "rejected by test",
    ) -> None:
        """Fail the envelopes `predicate` picks with a per-item `status`; accept the rest."""
        with self._lock:
            self._reject, self._reject_status, self._reject_message = predicate, status, message

    def require_token(self, token: str | None) -> None:
        """Require `Authorization: Bearer <token>` (Entra ID authentication); None: don't."""
        with self._lock:
            self.token = token

    def require_entra_id(self, principals: Iterable[str] = ()) -> None:
        """Require a valid Azure Monitor token; only `principals` (`oid`s) may publish."""
        with self._lock:
            self.principals = set(principals)

    def grant(self, principal: str) -> None:
        """Let `principal` publish, as a role assignment does once it has propagated."""
        with self._lock:
            if self.principals is None:
                self.principals = set()
            self.principals.add(principal)

    def _authentication_failure(self, authorization: str) -> int | None:
        """401 or 403 for a request the token rules refuse; None to go on (lock held)."""
        if self.token is not None and authorization != f"Bearer {self.token}":
            return 403 if authorization else 401
        if self.principals is None:
            return None
        scheme, _, token = authorization.partition(" ")
        claims = jwt_claims(token) if scheme == "Bearer" else None
        if claims is None:
            return 401
        now = self.now().timestamp()
        try:
            expired = float(claims["exp"]) <= now or float(claims.get("nbf", 0)) > now
        except (KeyError, TypeError, ValueError):
            return 401
        if expired or claims.get("aud") not in MONITOR_AUDIENCES:
            return 401
        return None if claims.get("oid") in self.principals else 403

    def recover(self) -> None:
        """Listen again and answer by the rules, with nothing scripted or rejected."""
        with self._lock:
            self._status, self._retry_after, self._reject = None, None, None
            self._script.clear()
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

    def _refusal(self, envelope: Envelope, oldest: datetime) -> tuple[int, str] | None:
        """The per-item error the service would give `envelope`, or None to accept it."""
        if envelope.get("iKey") != self.instrumentation_key:
            return 400, INVALID_KEY_MESSAGE
        moment = _time_of(envelope)
        if moment is None or moment < oldest:
            return 400, TOO_OLD_MESSAGE
        if self._reject is not None and self._reject(envelope):
            return self._reject_status, self._reject_message
        return None

    def _respond(
        self, envelopes: list[Envelope], size: int, authorization: str
    ) -> tuple[int, bytes, str | None]:
        counts = {"itemsReceived": len(envelopes), "itemsAccepted": 0, "errors": []}
        with self._lock:
            refused = self._authentication_failure(authorization)
            if refused is not None:
                return refused, json.dumps({**counts, "message": "authentication"}).encode(), None
            if self._script:
                scripted = self._script.pop(0)
                if scripted.accept:
                    self.accepted.extend(envelopes)
                return scripted.status, scripted.body, scripted.retry_after
            if self._status is not None:
                return self._status, json.dumps(counts).encode(), self._retry_after
            if len(envelopes) > self.max_request_items or size > self.max_request_bytes:
                return 413, json.dumps(counts).encode(), None
            oldest = self.now() - MAX_AGE
            errors: list[dict[str, Any]] = []
            taken: list[Envelope] = []
            for index, envelope in enumerate(envelopes):
                refusal = self._refusal(envelope, oldest)
                if refusal is None:
                    taken.append(envelope)
                else:
                    errors.append({"index": index, "statusCode": refusal[0], "message": refusal[1]})
            self.accepted.extend(taken)
        status = 200 if not errors else (206 if taken else 400)
        document = {**counts, "itemsAccepted": len(taken), "errors": errors}
        return status, json.dumps(document).encode(), None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path not in TRACK_PATHS:
                    self._send(404, b'{"error": "unknown path"}', None)
                    return
                if owner.location is not None:
                    # A regional redirect: the client sends the same request there.
                    self.send_response(307)
                    self.send_header("Location", owner.location + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    envelopes = parse_body(body, self.headers.get("Content-Encoding", ""))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    self._send(400, b'{"itemsReceived":0,"itemsAccepted":0,"errors":[]}', None)
                    return
                with owner._lock:
                    owner.received += 1
                if owner.delay_s:
                    time.sleep(owner.delay_s)
                authorization = self.headers.get("Authorization", "")
                status, data, retry_after = owner._respond(envelopes, length, authorization)
                self._send(status, data, retry_after)

            def _send(self, status: int, data: bytes, retry_after: str | None) -> None:
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
