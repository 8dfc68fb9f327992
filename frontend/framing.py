"""Find where an HTTP/1.1 request ends as its bytes arrive, before any thread is spent on it.

Pure: bytes in, a verdict out. It checks only what it needs to frame the request (the head's
line endings and size, Content-Length or chunked framing, the body cap) and the headers a
GitHub delivery must carry once; gunicorn's parser then parses the framed bytes in full.
https://www.rfc-editor.org/rfc/rfc9112#section-6.3
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

# GitHub caps webhook payloads at 25 MB.
# https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap
MAX_BODY_BYTES = 25 * 1024 * 1024
# The server's own header telling the app how long ago the request arrived, in seconds.
AGE_HEADER = "X-Frontend-Request-Age"
# A request line this long is not a webhook call: gunicorn's own limit is 4094 bytes.
MAX_REQUEST_LINE_BYTES = 8190
# The most a request head may take: gunicorn's own limits (a 4094-byte request line, 100
# fields of 8190 bytes) admit more, but GitHub's heads are about 1 KB.
MAX_HEAD_BYTES = 32 * 1024
# A chunk-size line: hex size, optional extensions; GitHub sends Content-Length anyway.
MAX_CHUNK_LINE_BYTES = 1024
# Headers GitHub sends once; two of them would be merged into one value ("id1,id2").
SINGLE_HEADERS = frozenset({b"x-github-delivery", b"x-github-event", b"x-hub-signature-256"})

_BARE_LF = re.compile(rb"(?<!\r)\n")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(;[\x20-\x7e\t]*)?")
_CONTENT_LENGTH = re.compile(rb"[0-9]{1,19}")


class FramingError(Exception):
    """A request that cannot be framed; `status` is the answer it gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Stage(Enum):
    HEAD = "head"
    LENGTH = "length"  # a body of known length
    CHUNK_LINE = "chunk line"
    CHUNK_DATA = "chunk data"
    CHUNK_END = "chunk end"  # the CRLF after a chunk's data
    TRAILER = "trailer"
    DONE = "done"


@dataclass
class RequestFraming:
    """Feed a connection's bytes as they come; `done` once the whole request has arrived.

    `head` holds the request line and headers; body bytes are returned by `feed` for the
    caller to keep (spooled), and bytes past the end of the request are kept in `surplus`.
    """

    max_body_bytes: int
    head: bytes = b""
    expects_continue: bool = False
    chunked: bool = False
    surplus: bytes = b""
    body_bytes: int = 0
    _stage: _Stage = _Stage.HEAD
    _pending: bytearray = field(default_factory=bytearray)  # head or chunk line, incomplete
    _line_end: int = -1  # where the request line ends, once found
    _remaining: int = 0  # body or chunk bytes still to come
    _headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Whether the whole request has arrived."""
        return self._stage is _Stage.DONE

    @property
    def content_length(self) -> int | None:
        """The body's length once the head has arrived; None for a chunked body."""
        return None if self.chunked else self.body_bytes

    @property
    def started(self) -> bool:
        """Whether any byte of the request has arrived."""
        return bool(self.head or self._pending)

    def feed(self, data: bytes | memoryview) -> bytes:
        """Take the next bytes; return those that belong to the body, as framed on the wire.

        Raises:
            FramingError: the request is malformed, too large, or names a header twice.
        """
        body = bytearray()
        while data and self._stage is not _Stage.DONE:
            data = self._step(data, body)
        if self._stage is _Stage.DONE:
            self.surplus += bytes(data)
        return bytes(body)

    def _step(self, data: bytes | memoryview, body: bytearray) -> bytes | memoryview:
        if self._stage is _Stage.HEAD:
            return self._take_head(data)
        if self._stage in (_Stage.LENGTH, _Stage.CHUNK_DATA):
            taken = data[: self._remaining]
            body += taken
            self._remaining -= len(taken)
            if not self._remaining:
                self._stage = _Stage.DONE if self._stage is _Stage.LENGTH else _Stage.CHUNK_END
            return data[len(taken) :]
        if self._stage is _Stage.CHUNK_END and not b"\r\n".startswith(
            (self._pending + bytes(data[:2]))[:2]
        ):
            raise FramingError(400, "chunk data is not followed by CRLF")
        line, rest = self._take_line(data, body)
        if line is None:
            return rest
        if self._stage is _Stage.CHUNK_LINE:
            self._begin_chunk(line)
        elif self._stage is _Stage.CHUNK_END:
            if line:
                raise FramingError(400, "chunk data is not followed by CRLF")
            self._stage = _Stage.CHUNK_LINE
        elif not line:  # the empty line that ends the trailers
            self._stage = _Stage.DONE
        elif b":" not in line:
            raise FramingError(400, "malformed trailer field")
        return rest

    def _take_line(
        self, data: bytes | memoryview, body: bytearray
    ) -> tuple[bytes | None, bytes | memoryview]:
        """One CRLF-terminated line of the chunked framing, kept in the body as it came."""
        self._pending += data
        end = self._pending.find(b"\r\n")
        if end < 0:
            if len(self._pending) > MAX_CHUNK_LINE_BYTES or b"\n" in self._pending:
                raise FramingError(400, "malformed chunk framing: bad line ending or too long")
            return None, b""
        line, rest = bytes(self._pending[:end]), bytes(self._pending[end + 2 :])
        if b"\n" in line or b"\r" in line or len(line) > MAX_CHUNK_LINE_BYTES:
            raise FramingError(400, "malformed chunk framing: bad line ending or too long")
        body += line + b"\r\n"
        self._pending = bytearray()
        return line, rest

    def _begin_chunk(self, line: bytes) -> None:
        match = _CHUNK_SIZE.fullmatch(line)
        if match is None:
            raise FramingError(400, "invalid chunk size line")
        size = int(match.group(1), 16)
        self.body_bytes += size
        if self.body_bytes > self.max_body_bytes:
            raise FramingError(413, f"request body exceeds {self.max_body_bytes} bytes")
        self._remaining = size
        self._stage = _Stage.CHUNK_DATA if size else _Stage.TRAILER

    def _take_head(self, data: bytes | memoryview) -> bytes | memoryview:
        # Only the bytes new since the last call are searched: a head sent a byte at a time
        # costs linear time, not quadratic.
        seen = len(self._pending)
        self._pending += data
        if self._line_end < 0:
            self._line_end = self._pending.find(b"\r\n", max(seen - 1, 0))
            line_bytes = self._line_end if self._line_end >= 0 else len(self._pending)
            if line_bytes > MAX_REQUEST_LINE_BYTES:
                raise FramingError(414, f"request line exceeds {MAX_REQUEST_LINE_BYTES} bytes")
        end = self._pending.find(b"\r\n\r\n", max(seen - 3, 0))
        if (end if end >= 0 else len(self._pending)) > MAX_HEAD_BYTES:
            raise FramingError(431, f"request head exceeds {MAX_HEAD_BYTES} bytes")
        if end < 0:
            if _BARE_LF.search(self._pending, max(seen - 1, 0)):
                raise FramingError(400, "request head lines must end with CRLF")
            return b""
        head, rest = bytes(self._pending[: end + 4]), bytes(self._pending[end + 4 :])
        self._pending = bytearray()
        self._frame_body(head)
        return rest

    def _frame_body(self, head: bytes) -> None:
        lines = head[:-4].split(b"\r\n")
        if any(b"\n" in line for line in lines):
            raise FramingError(400, "request head lines must end with CRLF")
        headers = [_split_field(line) for line in lines[1:]]
        names = [name for name, _ in headers]
        for name in SINGLE_HEADERS:
            if names.count(name) > 1:
                raise FramingError(400, f"the {name.decode()} header is given more than once")
        lengths = [value for name, value in headers if name == b"content-length"]
        codings = [value for name, value in headers if name == b"transfer-encoding"]
        self.expects_continue = any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in headers
        )
        if self.expects_continue:
            # This stage answers the expectation; the parser after it must not answer it again.
            kept = [line for line in lines if not line.lower().startswith(b"expect:")]
            head = b"\r\n".join(kept) + b"\r\n\r\n"
        self.head = head
        if codings:
            if lengths or len(codings) > 1 or codings[0].lower() != b"chunked":
                raise FramingError(400, "only a single chunked transfer coding is accepted")
            self.chunked = True
            self._stage = _Stage.CHUNK_LINE
            return
        if len(lengths) > 1 or (lengths and _CONTENT_LENGTH.fullmatch(lengths[0]) is None):
            raise FramingError(400, "invalid Content-Length header")
        self.body_bytes = self._remaining = int(lengths[0]) if lengths else 0
        if self.body_bytes > self.max_body_bytes:
            raise FramingError(413, f"request body exceeds {self.max_body_bytes} bytes")
        self._stage = _Stage.LENGTH if self._remaining else _Stage.DONE


def _split_field(line: bytes) -> tuple[bytes, bytes]:
    name, colon, value = line.partition(b":")
    if not colon or not name or name != name.strip():
        raise FramingError(400, "malformed header field")
    return name.lower(), value.strip(b" \t")
