"""Fit a delivery into one queue message: reduce, compress, then shorten free text if needed.

Azure queue messages hold 64 KiB of text; an envelope takes at most that less the room of a
poison record (`common.envelope.MAX_ENVELOPE_BYTES`), as base64(gzip(JSON)). Reduction alone
makes every realistic delivery fit; the shortening steps exist for pathological names
(thousands of long, distinct step names).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from common.envelope import MAX_ENVELOPE_BYTES, Envelope, compress, encoded_size, to_json_bytes
from common.reduction import reduce_payload

# Free-text fields shortened, in this order of limits, when a message does not fit.
TRUNCATION_LIMITS_CHARS = (200, 64, 16)
ELLIPSIS = "…"

# Paths to free text in the reduced payloads; "*" walks every element of a list.
FREE_TEXT_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "workflow_run": (
        ("workflow_run", "name"),
        ("workflow_run", "display_title"),
        ("workflow_run", "head_branch"),
        ("workflow", "name"),
    ),
    "workflow_job": (
        ("workflow_job", "name"),
        ("workflow_job", "workflow_name"),
        ("workflow_job", "head_branch"),
        ("workflow_job", "runner_name"),
        ("workflow_job", "runner_group_name"),
        ("workflow_job", "labels", "*"),
        ("workflow_job", "steps", "*", "name"),
    ),
}


class MessageTooLarge(Exception):
    """Even with every free-text field shortened, the delivery exceeds the queue's cap."""


@dataclass(frozen=True)
class PackedMessage:
    """Queue message text for one delivery, its size, whether text was shortened, its JSON.

    `document` is the envelope's JSON before compression, what a pack of several is built from.
    """

    text: str
    size_bytes: int
    truncated: bool
    document: bytes = b""


def pack(delivery: Envelope) -> PackedMessage:
    """Encode `delivery`, its payload reduced, as an envelope that fits in one queue message.

    Raises:
        MessageTooLarge: it does not fit even with free text shortened to the last limit.
    """
    payload = reduce_payload(delivery.event, delivery.payload)
    packed = _encode(delivery, payload, truncated=False)
    if packed.size_bytes <= MAX_ENVELOPE_BYTES:
        return packed
    for limit in TRUNCATION_LIMITS_CHARS:
        packed = _encode(delivery, shorten_free_text(delivery.event, payload, limit), True)
        if packed.size_bytes <= MAX_ENVELOPE_BYTES:
            return packed
    raise MessageTooLarge(
        f"{delivery.event} delivery {delivery.delivery_id} takes {packed.size_bytes} bytes "
        f"with free text cut to {TRUNCATION_LIMITS_CHARS[-1]} characters; "
        f"an envelope may take {MAX_ENVELOPE_BYTES} (the queue's 64 KiB less a poison record)"
    )


def shorten_free_text(event: str, payload: dict[str, Any], limit: int) -> dict[str, Any]:
    """A copy of `payload` with each free-text field of `event` cut to `limit` characters."""
    shortened: Any = payload
    for path in FREE_TEXT_PATHS.get(event, ()):
        shortened = _shorten_at(shortened, path, limit)
    result: dict[str, Any] = shortened
    return result


def clip(text: str, limit: int) -> str:
    """`text` itself if it has at most `limit` characters, else its start and an ellipsis."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _shorten_at(value: Any, path: tuple[str, ...], limit: int) -> Any:
    if not path:
        return clip(value, limit) if isinstance(value, str) else value
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(value, list):
        return [_shorten_at(item, rest, limit) for item in value]
    if isinstance(value, dict) and head in value:
        return {**value, head: _shorten_at(value[head], rest, limit)}
    return value


def _encode(delivery: Envelope, payload: dict[str, Any], truncated: bool) -> PackedMessage:
    document = to_json_bytes(replace(delivery, payload=payload, truncated=truncated))
    text = compress(document)
    return PackedMessage(text, encoded_size(text), truncated, document)
