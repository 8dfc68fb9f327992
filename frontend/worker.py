"""gunicorn's thread worker with a non-blocking read stage in front of its thread pool.

gthread hands a connection to a thread as soon as it is accepted, and the thread then blocks on
the client: 20 clients trickling a body a byte a second, or a few hundred sending nothing,
held every thread, and signed deliveries waited behind them past GitHub's 10 s. Here the main
loop reads every request whole first, with one deadline from its arrival (`read_deadline_s`),
spooling large bodies to a temporary file; a thread only ever gets a request that has fully
arrived, and its age, so the view answers within its budget counted from the arrival. Errors
gunicorn answers itself come back as JSON. Measurements: docs/http.md.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from gunicorn.http import RequestParser
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from common.settings import environment
from frontend.framing import AGE_HEADER, MAX_BODY_BYTES, FramingError, RequestFraming
from frontend.settings import load_frontend_settings
from frontend.spool import SPOOL_BYTES, open_spool

log = logging.getLogger(__name__)

_RECV_BYTES = 64 * 1024
# Reads per readable event, so that one fast large upload does not starve the loop.
_RECVS_PER_EVENT = 16
# Requests read whole and waiting for a thread, per worker; more are answered 503 at once.
# Enough to ride out a burst (a matrix of a few hundred jobs starting together) rather than
# refuse it; a cap of 64 refused 142 of a burst of 400 deliveries. A request that waited past
# its answer deadline gets its 503 as soon as a thread takes it, without the app. Below
# gunicorn's worker_connections (1,000 connections per worker, in every stage and kept alive),
# past which a worker accepts nothing more and new connections wait in the kernel's backlog.
MAX_WAITING_REQUESTS = 512
# The body bytes those requests hold in memory, per worker (a body over SPOOL_BYTES waits on
# disk): what a crowd of large unsigned bodies can cost while they wait for a thread.
MAX_WAITING_BODY_BYTES = 64 * 1024 * 1024
RETRY_AFTER_S = 30
# A worker out of file descriptors says so at most this often.
_ACCEPT_WARNING_INTERVAL_S = 10.0
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# mallopt's parameter number of the mmap threshold, and glibc's default value of it.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 128 * 1024

# What gunicorn's own parser refuses, by status; every other parse error is a 400.
_STATUS_OF_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (http_errors.LimitRequestLine, 414),
    (http_errors.LimitRequestHeaders, 431),
    (http_errors.UnsupportedTransferCoding, 501),
    (http_errors.ExpectationFailed, 417),
    (http_errors.ForbiddenProxyRequest, 403),
    (http_errors.ConfigurationProblem, 500),
    (http_errors.InvalidResponseHeader, 500),
    (http_errors.InvalidResponseHeaderName, 500),
    (http_errors.ParseException, 400),
)
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass(eq=False)
class _Reading:
    """A connection whose request is still arriving."""

    conn: TConn
    arrived: float
    deadline: float
    framing: RequestFraming
    spool: IO[bytes] | None = None  # opened once the head tells the body's length
    continued: bool = False


class ReadAheadWorker(ThreadWorker):  # type: ignore[misc]
    """A gthread worker whose threads only ever serve requests that have fully arrived."""

    def init_process(self) -> None:
        """Read the frontend's deadlines, then start the loop as gthread does."""
        fix_malloc_threshold()
        settings = load_frontend_settings(environment())
        self.read_deadline_s = settings.read_deadline_s
        self.answer_deadline_s = settings.answer_deadline_s
        self._reading: dict[TConn, _Reading] = {}
        self._reading_order: deque[_Reading] = deque()
        self._waiting = 0
        self._waiting_bytes = 0
        self._waiting_lock = threading.Lock()
        self._accept_warned_at = -_ACCEPT_WARNING_INTERVAL_S
        # One receive buffer for the loop: no fresh 64 KB object per read.
        self._buffer = bytearray(_RECV_BYTES)
        self._view = memoryview(self._buffer)
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection into the read stage, not a thread."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                # Out of file descriptors or memory: the connection waits in the backlog.
                now = time.monotonic()
                if now >= self._accept_warned_at + _ACCEPT_WARNING_INTERVAL_S:
                    self._accept_warned_at = now
                    log.warning("no connection accepted now: %s", error)
                return
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self._begin_reading(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection's next request goes through the read stage too."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._begin_reading(conn)

    def murder_pending(self) -> None:
        """Close connections whose request did not arrive in time, besides gthread's own."""
        super().murder_pending()
        now = time.monotonic()
        while self._reading_order and self._reading_order[0].deadline <= now:
            reading = self._reading_order.popleft()
            if self._reading.get(reading.conn) is not reading:
                continue  # handed over or refused already
            if reading.framing.started:
                message = f"request not received within {self.read_deadline_s:g} s"
                self._refuse(reading, 408, message)
            else:
                self._close(reading)

    def handle(self, conn: TConn) -> Any:
        """Serve a request read whole; a thread took it, so it no longer waits.

        One that waited past its answer deadline gets its 503 here, before gunicorn parses it
        and the app sees it: under overload a late answer costs no more than it must.
        """
        if conn.waiting:  # counted once, whatever gthread does with the connection after
            conn.waiting = False
            with self._waiting_lock:
                self._waiting -= 1
                self._waiting_bytes -= conn.waiting_bytes
        age_s = time.monotonic() - getattr(conn, "arrived", time.monotonic())
        if age_s >= self.answer_deadline_s:
            log.warning("request shed before the app: it waited %.1f s for a thread", age_s)
            message = f"the request waited {age_s:.1f} s for a thread, past its answer deadline"
            try:
                conn.sock.setblocking(False)
                conn.sock.send(error_response(503, message))
            except OSError:
                pass
            return False
        return super().handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> Any:
        """Tell the app how long ago the request arrived (a client's own claim is dropped)."""
        name = AGE_HEADER.upper()
        age_s = time.monotonic() - getattr(conn, "arrived", time.monotonic())
        req.headers = [(key, value) for key, value in req.headers if key.upper() != name]
        req.headers.append((name, f"{age_s:.3f}"))
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: Exception) -> None:
        """Answer what gunicorn refuses as JSON, with gunicorn's own status codes."""
        status = next((code for kind, code in _STATUS_OF_ERROR if isinstance(exc, kind)), 500)
        if status >= 500:
            self.log.exception("Error handling request")
            message = "internal error"
        else:
            self.log.debug("Refused request: %s", exc)
            message = str(exc)[:200] or type(exc).__name__
        try:
            client.setblocking(False)
            client.send(error_response(status, message))
        except OSError:
            pass

    def _keepalive_after(self, conn: TConn, keepalive: bool) -> bool:
        # Bytes read past a request (pipelining) are not served: the connection closes. What
        # the app left of the body is in memory or the spool, never on the socket.
        if not keepalive or conn.surplus:
            return False
        return bool(conn.parser.finish_body())

    def _begin_reading(self, conn: TConn) -> None:
        now = time.monotonic()
        conn.surplus = b""
        conn.waiting_bytes = 0
        conn.waiting = False
        conn.sock.setblocking(False)
        reading = _Reading(conn, now, now + self.read_deadline_s, RequestFraming(MAX_BODY_BYTES))
        self._reading[conn] = reading
        self._reading_order.append(reading)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, reading))
        # The request is often there already (sent with the connect, or the socket was readable
        # to begin with): read it now rather than after another turn of the loop.
        self._on_readable(reading, conn.sock)

    def _on_readable(self, reading: _Reading, client: socket.socket) -> None:
        try:
            for _ in range(_RECVS_PER_EVENT):
                size = client.recv_into(self._buffer)
                if not size:
                    self._close(reading)
                    return
                body = reading.framing.feed(self._view[:size])
                if reading.spool is None and reading.framing.head:
                    reading.spool = open_spool(reading.framing.content_length)
                if body and reading.spool is not None:
                    reading.spool.write(body)
                if reading.framing.done:
                    self._hand_over(reading)
                    return
                if reading.framing.expects_continue and not reading.continued:
                    reading.continued = True
                    client.send(_CONTINUE)
        except BlockingIOError:
            return
        except FramingError as error:
            self._refuse(reading, error.status, str(error))
        except OSError:
            self._close(reading)

    def _hand_over(self, reading: _Reading) -> None:
        conn = reading.conn
        self.poller.unregister(conn.sock)
        del self._reading[conn]
        # What its body holds in memory while it waits (beyond SPOOL_BYTES it is on disk).
        held = 0 if reading.spool is None else min(reading.spool.tell(), SPOOL_BYTES)
        with self._waiting_lock:
            full = self._waiting >= MAX_WAITING_REQUESTS or (
                self._waiting_bytes + held > MAX_WAITING_BODY_BYTES
            )
            waiting, waiting_mb = self._waiting, self._waiting_bytes / (1024 * 1024)
            if not full:
                self._waiting += 1
                self._waiting_bytes += held
        if full:
            message = f"{waiting} requests ({waiting_mb:.0f} MB) already wait for a thread"
            self._refuse(reading, 503, message)
            return
        conn.waiting_bytes = held
        conn.waiting = True
        if reading.spool is not None:
            reading.spool.seek(0)
        conn.parser = RequestParser(self.cfg, _request_bytes(reading), conn.client)
        conn.arrived = reading.arrived
        conn.surplus = reading.framing.surplus
        conn.data_ready = True
        self.enqueue_req(conn)

    def _refuse(self, reading: _Reading, status: int, message: str) -> None:
        log.info("request refused before the app: %d %s", status, message)
        try:
            reading.conn.sock.send(error_response(status, message))
        except OSError:
            pass
        self._close(reading)

    def _close(self, reading: _Reading) -> None:
        conn = reading.conn
        if self._reading.pop(conn, None) is not None:
            self.poller.unregister(conn.sock)
        if reading.spool is not None:
            reading.spool.close()
        self.nr_conns -= 1
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()


def fix_malloc_threshold() -> None:
    """Keep glibc from raising its mmap threshold, so large buffers go back to the system.

    glibc raises the threshold to the largest block freed (up to 32 MB), after which body
    buffers of a few hundred kilobytes come from per-thread heaps that keep their peak: 16
    concurrent 25 MB bodies left a worker at 245 MB; with the threshold fixed, 91 MB at the
    peak and 47 MB after. Elsewhere than glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def _request_bytes(reading: _Reading) -> Iterator[bytes]:
    """The framed request for gunicorn's parser: the head, then the spooled body."""
    yield reading.framing.head
    spool = reading.spool
    if spool is None:
        return
    try:
        while chunk := spool.read(_RECV_BYTES):
            yield chunk
    finally:
        spool.close()


def error_response(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer with a JSON error body, closing the connection."""
    reason = _REASONS.get(status, "Error")
    body = json.dumps({"error": message}).encode("utf-8")
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if status == 503:
        head.append(f"Retry-After: {RETRY_AFTER_S}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body
