"""The queue by role: the producer the frontend sends to, the consumer the backend drains.

Both roles share the message type, the errors and the poison record; `common.azure_queue` and
`common.memory_queue` implement both.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from common.envelope import MAX_MESSAGE_BYTES


class QueueError(Exception):
    """Base class of queue failures."""


class QueueUnavailable(QueueError):
    """The queue could not be reached or answered with a transient error; try again later."""


class MessageGone(QueueError):
    """The message was deleted or its pop receipt is stale (its visibility ran out)."""


@dataclass(frozen=True)
class QueueMessage:
    """A received message: its id, the pop receipt that owns it now, text and receive count."""

    id: str
    pop_receipt: str
    content: str
    dequeue_count: int
    inserted_on: datetime | None = None


class QueueProducer(Protocol):
    """What the frontend needs of a queue: put a message on it, and check that it answers."""

    name: str

    def send(self, content: str) -> str:
        """Enqueue text durably and return the message id."""

    def ping(self) -> None:
        """Raise QueueUnavailable unless the queue answers."""


class QueueConsumer(Protocol):
    """What the backend needs of a queue: receive, hold, settle and dead-letter messages."""

    name: str

    def receive(self, max_messages: int, visibility_timeout_s: int) -> list[QueueMessage]:
        """Receive up to `max_messages`, hidden from others for `visibility_timeout_s`."""

    def delete(self, message: QueueMessage) -> None:
        """Delete a received message; raises MessageGone if it is no longer ours."""

    def extend(self, message: QueueMessage, visibility_timeout_s: int) -> QueueMessage:
        """Keep a message hidden for `visibility_timeout_s` more; returns it with a new receipt."""

    def release(self, message: QueueMessage) -> None:
        """Make a received message visible again now."""

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        """Copy the message with `reason` to the poison queue, then delete it."""

    def send_poison(self, record: str) -> None:
        """Put a `poison_record` on the poison queue; the source message is left as it is."""


# A reason may quote what it refuses (a 40 KB action); the record must stay within the cap,
# so a reason takes at most this many bytes once JSON-escaped.
MAX_REASON_BYTES = 1024


def _bounded_reason(reason: str) -> str:
    """`reason`, cut so that it takes at most MAX_REASON_BYTES in the record's JSON."""
    if len(json.dumps(reason)) <= MAX_REASON_BYTES:
        return reason
    note = f"… ({len(reason)} characters)"
    keep = MAX_REASON_BYTES - len(json.dumps(note))
    while keep and len(json.dumps(reason[:keep] + note)) > MAX_REASON_BYTES:
        keep //= 2  # escapes make a character take up to 12 bytes
    return reason[:keep] + note


# The record put on `<queue>-poison`: what was wrong, where it came from, and the original text.
def poison_record(
    message: QueueMessage,
    reason: str,
    queue_name: str,
    now: datetime,
    member: tuple[int, int, str] | None = None,
    *,
    completed_key: str | None = None,
) -> str:
    """Build the poison queue text for `message`, always within the queue's size cap.

    Text of at most MAX_ENVELOPE_BYTES (all the frontend sends) is always kept whole and as it
    was; longer text is gzipped, and cut only if even that does not fit.

    `member` = (index, count, text) makes it the record of one envelope of a pack: `content`
    is that envelope alone as single-envelope message text, not the whole message.
    `completed_key` names the member's ledger key recorded as done on poisoning, which a
    replay must reopen first.
    """
    content = message.content if member is None else member[2]
    reason = _bounded_reason(reason)
    record: dict[str, Any] = {
        "reason": reason,
        "source_queue": queue_name,
        "message_id": message.id,
        "dequeue_count": message.dequeue_count,
        "inserted_on": message.inserted_on.isoformat() if message.inserted_on else None,
        "dead_lettered_at": now.isoformat(),
        "content_sha256": hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest(),
        "content_encoding": "text",
        "content": content,
    }
    if member is not None:
        record["member_index"], record["member_count"] = member[0], member[1]
        if completed_key is not None:
            record["completed_key"] = completed_key
    text = json.dumps(record, separators=(",", ":"))
    if len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES:
        return text
    packed = gzip.compress(content.encode("utf-8", "surrogatepass"), mtime=0)
    record["content_encoding"] = "gzip+base64"
    record["content"] = base64.b64encode(packed).decode("ascii")
    text = json.dumps(record, separators=(",", ":"))
    if len(text.encode("utf-8")) <= MAX_MESSAGE_BYTES:
        return text
    # Incompressible and at the cap: keep the reason, the hash and as much text as fits.
    record["content_encoding"] = "text-truncated"
    record["content"] = ""
    room = MAX_MESSAGE_BYTES - len(json.dumps(record, separators=(",", ":")).encode()) - 64
    record["content"] = content.encode("utf-8", "surrogatepass")[: max(room, 0) // 2].decode(
        "utf-8", errors="ignore"
    )
    return json.dumps(record, separators=(",", ":"))
