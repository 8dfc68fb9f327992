"""Messages that would crash a reader, not just fail it: deep nesting, huge ints, gzip bombs."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable

import pytest

from common.envelope import MAX_DECOMPRESSED_BYTES, EnvelopeError, decode, decode_members

DECODERS: list[Callable[[str], object]] = [decode, decode_members]
ENVELOPE_HEAD = (
    b'{"version":1,"delivery_id":"d","event":"workflow_run","action":"completed",'
    b'"received_at":"2024-03-05T10:00:00Z","payload":'
)


def message(raw: bytes) -> str:
    """Queue message text of arbitrary JSON bytes."""
    return base64.b64encode(gzip.compress(raw, mtime=0)).decode("ascii")


@pytest.mark.parametrize("decoder", DECODERS, ids=["decode", "decode_members"])
@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "not JSON: maximum recursion depth exceeded"),
        (ENVELOPE_HEAD + b'{"x":' + b"[" * 63 + b"]" * 63 + b"}}", "JSON nested deeper than 64"),
        (b"1" * 5000, "not JSON: Exceeds the limit (4300 digits)"),
        (ENVELOPE_HEAD + b'{"x":' + b"1" * 5000 + b"}}", "not JSON: Exceeds the limit"),
        (b'{"pad":"' + b"0" * MAX_DECOMPRESSED_BYTES + b'"}', "decompresses to more than 1048576"),
    ],
    ids=["deep-array", "deep-payload", "huge-int", "huge-int-in-payload", "gzip-bomb"],
)
def test_a_message_that_would_crash_a_reader_is_an_envelope_error(
    decoder: Callable[[str], object], raw: bytes, reason: str
) -> None:
    with pytest.raises(EnvelopeError) as raised:
        decoder(message(raw))

    assert str(raised.value).startswith(reason)


def test_a_bomb_is_refused_without_inflating_it_whole() -> None:
    bomb = message(b"0" * (200 * MAX_DECOMPRESSED_BYTES))  # 200 MiB in about 200 KB

    with pytest.raises(EnvelopeError, match="decompresses to more than"):
        decode_members(bomb)


def test_a_payload_nested_within_the_cap_still_decodes() -> None:
    raw = ENVELOPE_HEAD + b'{"x":' + b"[" * 61 + b"]" * 61 + b"}}"

    assert len(decode_members(message(raw))) == 1
