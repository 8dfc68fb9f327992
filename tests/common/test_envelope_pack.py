"""Packs: several envelopes in one message, decoded member by member, old messages unchanged."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from common.envelope import (
    EnvelopeError,
    Member,
    decode,
    decode_members,
    decode_message,
    encode,
    encode_pack,
    to_json_bytes,
)
from tools.payloads import envelope_for, workflow_job_payload, workflow_run_payload

RUN = envelope_for(workflow_run_payload("completed"), delivery_id="d-run")
JOB = envelope_for(workflow_job_payload("completed"), delivery_id="d-job")


def _text(document: Any) -> str:
    raw = json.dumps(document).encode("utf-8")
    return base64.b64encode(gzip.compress(raw)).decode("ascii")


def _document(envelope: Any) -> Any:
    return json.loads(to_json_bytes(envelope))


def test_a_pack_round_trips_its_envelopes_in_order() -> None:
    text = encode_pack([to_json_bytes(RUN), to_json_bytes(JOB)])

    assert decode_message(text) == [RUN, JOB]
    assert json.loads(gzip.decompress(base64.b64decode(text)))["version"] == 1


def test_a_single_envelope_message_is_one_member() -> None:
    text = encode(JOB)

    assert decode_message(text) == [JOB]
    assert decode_members(text) == [Member(0, 1, _document(JOB), envelope=JOB)]
    assert decode(text) == JOB


def test_decode_of_a_pack_refuses_instead_of_taking_one_member() -> None:
    with pytest.raises(EnvelopeError, match="a pack of envelopes, not a single envelope"):
        decode(encode_pack([to_json_bytes(RUN), to_json_bytes(JOB)]))


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("not an object", "not a JSON object"),
        ({**_document(JOB), "version": 2}, "invalid envelope: {'version': "),
    ],
    ids=["not-an-object", "wrong-version"],
)
def test_an_invalid_member_is_reported_alone_and_the_others_stand(bad: Any, error: str) -> None:
    text = _text({"version": 1, "envelopes": [_document(RUN), bad, _document(JOB)]})

    members = decode_members(text)

    assert [(m.index, m.count, m.envelope) for m in members] == [
        (0, 3, RUN),
        (1, 3, None),
        (2, 3, JOB),
    ]
    assert str(members[1].error).startswith(error)
    assert json.loads(gzip.decompress(base64.b64decode(members[1].text()))) == bad
    with pytest.raises(EnvelopeError, match=r"^member 1 of 3: "):
        decode_message(text)


def test_a_member_alone_is_a_single_envelope_message() -> None:
    [_, job] = decode_members(encode_pack([to_json_bytes(RUN), to_json_bytes(JOB)]))

    assert decode(job.text()) == JOB


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"version": 2, "envelopes": [_document(JOB)]}, "invalid pack: version must be 1"),
        ({"version": 1, "envelopes": [_document(JOB)], "x": 1}, "invalid pack: version must be 1"),
        ({"version": 1, "envelopes": []}, "invalid pack: envelopes must be a non-empty list"),
        ({"version": 1, "envelopes": {"a": 1}}, "invalid pack: envelopes must be a non-empty list"),
        ({"version": True, "envelopes": [_document(JOB)]}, "invalid pack: version must be 1"),
    ],
    ids=["version", "extra-field", "empty", "not-a-list", "boolean-version"],
)
def test_a_pack_with_an_invalid_wrapper_is_unreadable_as_a_whole(
    document: dict[str, Any], error: str
) -> None:
    with pytest.raises(EnvelopeError, match=error):
        decode_members(_text(document))


def test_an_invalid_member_with_a_lone_surrogate_still_has_a_text() -> None:
    bad = {"version": 1, "event": "workflow_job", "delivery_id": "x\ud800"}
    text = _text({"version": 1, "envelopes": [_document(RUN), bad]})

    [_, member] = decode_members(text)

    assert member.error is not None
    assert json.loads(gzip.decompress(base64.b64decode(member.text()))) == bad
