"""The queue envelope codec: base64(gzip(JSON)), versioned, and every way decoding fails."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.envelope import (
    ENVELOPE_VERSION,
    MAX_MESSAGE_BYTES,
    Envelope,
    EnvelopeError,
    decode,
    encode,
    encoded_size,
    to_json_bytes,
    utc_now,
)
from tools.payloads import RECEIVED_AT, envelope_for, workflow_job_payload, workflow_run_payload


def _text(document: Any) -> str:
    """Message text for any JSON document, encoded the way `encode` does."""
    raw = json.dumps(document).encode("utf-8")
    return base64.b64encode(gzip.compress(raw)).decode("ascii")


def _document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(to_json_bytes(envelope_for(workflow_run_payload())))
    document.update(changes)
    return document


@pytest.mark.parametrize(
    "envelope",
    [
        envelope_for(workflow_run_payload("requested")),
        envelope_for(workflow_job_payload("completed")),
        replace(envelope_for(workflow_job_payload("queued")), truncated=True, hook_id=""),
        replace(envelope_for({"action": "ünïcode ✓"}, event="workflow_run")),
    ],
    ids=["run", "job", "truncated", "unicode"],
)
def test_encode_then_decode_round_trips(envelope: Envelope) -> None:
    assert decode(encode(envelope)) == envelope


def test_the_text_is_base64_of_gzip_of_compact_json() -> None:
    envelope = envelope_for(workflow_run_payload())

    text = encode(envelope)

    raw = gzip.decompress(base64.b64decode(text))
    assert raw == to_json_bytes(envelope)
    assert json.loads(raw) == {
        "version": 1,
        "delivery_id": envelope.delivery_id,
        "event": "workflow_run",
        "action": "completed",
        "hook_id": "470102145",
        "installation_target_type": "organization",
        "installation_target_id": "79927191",
        "received_at": "2024-03-05T10:05:00+00:00",
        "truncated": False,
        "payload": envelope.payload,
    }
    assert encoded_size(text) == len(text) < MAX_MESSAGE_BYTES


def test_encoding_is_deterministic() -> None:
    envelope = envelope_for(workflow_job_payload())

    assert encode(envelope) == encode(envelope)


def test_optional_fields_default_when_absent() -> None:
    document = _document()
    for key in ("hook_id", "installation_target_type", "installation_target_id", "truncated"):
        del document[key]

    envelope = decode(_text(document))

    assert (envelope.hook_id, envelope.installation_target_type) == ("", "")
    assert (envelope.installation_target_id, envelope.truncated) == ("", False)


def test_a_received_time_with_an_offset_keeps_its_instant() -> None:
    envelope = decode(_text(_document(received_at="2024-03-05T12:05:00+02:00")))

    assert envelope.received_at == RECEIVED_AT
    assert envelope.received_at.utcoffset() == timedelta(hours=2)


def test_utc_now_is_aware_utc() -> None:
    now = utc_now()

    assert now.tzinfo is UTC
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not base64!", "not base64-encoded gzip: "),
        ("ünïcode", "not base64-encoded gzip: "),
        (base64.b64encode(b"plain text, not gzip").decode(), "not base64-encoded gzip: "),
        (base64.b64encode(gzip.compress(b"x")[:-4]).decode(), "not base64-encoded gzip: "),
        (base64.b64encode(gzip.compress(b"{}")[:-12]).decode(), "not base64-encoded gzip: the"),
        (base64.b64encode(gzip.compress(b"{}") + b"x").decode(), "not base64-encoded gzip: bytes"),
        (base64.b64encode(gzip.compress(b"{not json")).decode(), "not JSON: "),
        (base64.b64encode(gzip.compress(b"\xff\xfe\x00")).decode(), "not JSON: "),
        (_text([1, 2]), "not a JSON object"),
        (_text("envelope"), "not a JSON object"),
        (_text(None), "not a JSON object"),
        ("", "not JSON: "),
    ],
    ids=[
        "not-base64",
        "non-ascii",
        "not-gzip",
        "truncated-gzip",
        "cut-short",
        "trailing-bytes",
        "bad-json",
        "bad-utf8",
        "array",
        "string",
        "null",
        "empty",
    ],
)
def test_undecodable_text_is_an_envelope_error(text: str, message: str) -> None:
    with pytest.raises(EnvelopeError) as raised:
        decode(text)

    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"version": 2}, "version", "Must be equal to 1."),
        ({"version": "one"}, "version", "Not a valid integer."),
        ({"delivery_id": ""}, "delivery_id", "Shorter than minimum length 1."),
        ({"event": None}, "event", "Field may not be null."),
        ({"received_at": "yesterday"}, "received_at", "Not a valid datetime."),
        ({"payload": []}, "payload", "Not a valid mapping type."),
        ({"truncated": "maybe"}, "truncated", "Not a valid boolean."),
        ({"surprise": 1}, "surprise", "Unknown field."),
    ],
    ids=["version", "version-type", "delivery-id", "event", "time", "payload", "flag", "unknown"],
)
def test_invalid_envelopes_are_envelope_errors(
    changes: dict[str, Any], field: str, error: str
) -> None:
    with pytest.raises(EnvelopeError) as raised:
        decode(_text(_document(**changes)))

    assert str(raised.value) == f"invalid envelope: {{'{field}': ['{error}']}}"


@pytest.mark.parametrize("field", ["version", "delivery_id", "event", "received_at", "payload"])
def test_a_missing_required_field_is_an_envelope_error(field: str) -> None:
    document = _document()
    del document[field]

    with pytest.raises(EnvelopeError) as raised:
        decode(_text(document))

    assert str(raised.value) == (
        f"invalid envelope: {{'{field}': ['Missing data for required field.']}}"
    )


def test_a_newer_version_is_refused_not_guessed() -> None:
    envelope = replace(envelope_for(workflow_run_payload()), version=ENVELOPE_VERSION + 1)

    with pytest.raises(EnvelopeError) as raised:
        decode(encode(envelope))

    assert str(raised.value) == "invalid envelope: {'version': ['Must be equal to 1.']}"
