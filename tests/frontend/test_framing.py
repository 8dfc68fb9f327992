"""Framing a request as its bytes arrive: where it ends, and what cannot be framed."""

from __future__ import annotations

import pytest

from frontend.framing import FramingError, RequestFraming

CAP = 1000


def _frame(raw: bytes, piece: int = 0) -> tuple[RequestFraming, bytes]:
    """Feed `raw` whole, or `piece` bytes at a time; the framing and the body it returned."""
    framing = RequestFraming(CAP)
    size = piece or len(raw)
    body = b"".join(framing.feed(raw[i : i + size]) for i in range(0, len(raw), size))
    return framing, body


HEAD = b"POST /webhook HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize("piece", [0, 1, 7])
def test_a_body_of_known_length_ends_at_its_length_and_the_rest_is_surplus(piece: int) -> None:
    framing, body = _frame(HEAD + b"Content-Length: 5\r\n\r\nhelloGET /", piece)

    assert (framing.done, body, framing.surplus, framing.content_length) == (
        True,
        b"hello",
        b"GET /",
        5,
    )
    assert framing.head == HEAD + b"Content-Length: 5\r\n\r\n"


@pytest.mark.parametrize("piece", [0, 1, 3])
def test_a_chunked_body_ends_after_its_trailers_with_its_framing_kept(piece: int) -> None:
    chunks = b"5;name=value\r\nhello\r\n2\r\n, \r\n0\r\nX-Trailer: yes\r\n\r\n"

    framing, body = _frame(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunks, piece)

    assert (framing.done, body, framing.content_length, framing.body_bytes) == (
        True,
        chunks,
        None,
        7,
    )


def test_a_request_is_not_done_until_its_last_byte() -> None:
    framing, _ = _frame(HEAD + b"Content-Length: 5\r\n\r\nhell")

    assert (framing.started, framing.done) == (True, False)


def test_expect_100_continue_is_answered_by_the_stage_and_dropped_from_the_head() -> None:
    framing, _ = _frame(HEAD + b"Expect: 100-continue\r\nContent-Length: 0\r\n\r\n")

    assert framing.expects_continue
    assert framing.head == HEAD + b"Content-Length: 0\r\n\r\n"


REFUSED = {
    "bare LF in the head": (b"POST / HTTP/1.1\nHost: x\n\n", 400),
    "request line too long": (b"GET /" + b"a" * 9000, 414),
    "head too large": (HEAD + b"X: " + b"b" * 40_000, 431),
    "two content lengths": (HEAD + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n", 400),
    "content length not a number": (HEAD + b"Content-Length: +1\r\n\r\n", 400),
    "body over the cap": (HEAD + b"Content-Length: 1001\r\n\r\n", 413),
    "gzip coding": (HEAD + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    "chunked and a length": (
        HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        400,
    ),
    "space before a colon": (HEAD + b"Content-Length : 1\r\n\r\n", 400),
    "two delivery ids": (HEAD + b"X-GitHub-Delivery: a\r\nx-github-delivery: b\r\n\r\n", 400),
    "bad chunk size": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n-1\r\n", 400),
    "chunks over the cap": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n3e9\r\n", 413),
    "no CRLF after data": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n1\r\naX", 400),
    "trailer without colon": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nbad\r\n", 400),
}


@pytest.mark.parametrize(("raw", "status"), REFUSED.values(), ids=REFUSED.keys())
def test_what_cannot_be_framed_is_refused_with_its_status(raw: bytes, status: int) -> None:
    with pytest.raises(FramingError) as raised:
        _frame(raw)

    assert raised.value.status == status
