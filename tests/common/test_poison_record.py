"""The poison record stays within the queue's size cap whatever its reason and content."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from backend.idempotency.ledger import check_key
from common.envelope import MAX_MESSAGE_BYTES
from common.queue import MAX_REASON_CHARS, QueueMessage, poison_record

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("content", ["A" * 1000, "B" * (MAX_MESSAGE_BYTES - 100)])
def test_a_long_reason_is_trimmed_so_the_record_fits(content: str) -> None:
    message = QueueMessage("m1", "receipt", content, 6)

    text = poison_record(message, "x" * 70_000, "events", NOW)

    record = json.loads(text)
    assert len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES
    assert record["reason"] == "x" * MAX_REASON_CHARS + "… (70000 characters)"


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
