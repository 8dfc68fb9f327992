"""The poison record stays within the queue's size cap whatever its reason and content."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backend.idempotency.ledger import check_key
from common.envelope import MAX_ENVELOPE_BYTES, MAX_MESSAGE_BYTES
from common.queue import MAX_REASON_BYTES, QueueMessage, poison_record

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("content", ["A" * 1000, "B" * (MAX_MESSAGE_BYTES - 100)])
def test_a_long_reason_is_trimmed_so_the_record_fits(content: str) -> None:
    message = QueueMessage("m1", "receipt", content, 6)

    text = poison_record(message, "x" * 70_000, "events", NOW)

    record = json.loads(text)
    assert len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES
    kept = MAX_REASON_BYTES - len(json.dumps("… (70000 characters)"))
    assert record["reason"] == "x" * kept + "… (70000 characters)"


@pytest.mark.parametrize("reason", ["x" * 70_000, "\0" * 70_000, "\ud800é" * 9_000])
def test_an_envelope_at_its_cap_is_kept_whole_whatever_the_reason(reason: str) -> None:
    # Base64 text as the frontend sends, at the most it sends.
    content = ("Ab+/" * MAX_ENVELOPE_BYTES)[:MAX_ENVELOPE_BYTES]
    message = QueueMessage("0" * 36, "receipt", content, 6)

    text = poison_record(message, reason, "q" * 63, NOW, member=(31, 32, content))

    record = json.loads(text)
    assert len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES
    assert (record["content_encoding"], record["content"]) == ("text", content)
    assert len(json.dumps(record["reason"])) <= MAX_REASON_BYTES


def test_a_short_reason_is_kept_whole() -> None:
    text = poison_record(QueueMessage("m1", "r", "A", 1), "bad envelope", "events", NOW)

    assert json.loads(text)["reason"] == "bad envelope"


def test_a_refused_key_is_quoted_short_in_the_error() -> None:
    key = "workflow_job:1:" + "z" * 40_000 + "/"

    with pytest.raises(ValueError) as caught:
        check_key(key)

    assert len(str(caught.value)) < 300
    assert "40016 characters" in str(caught.value)


def test_a_key_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="character tables refuse"):
        check_key("workflow_job:1:complet\ud800ed")
