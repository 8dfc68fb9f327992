"""The versioned queue envelope and its codec: JSON, gzip-compressed, base64 text."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

ENVELOPE_VERSION = 1

# Azure Storage queue messages hold at most 64 KiB of text.
# https://learn.microsoft.com/en-us/rest/api/storageservices/put-message
MAX_MESSAGE_BYTES = 64 * 1024


class EnvelopeError(ValueError):
    """A queue message that is not a valid envelope."""


@dataclass(frozen=True)
class Envelope:
    """One GitHub delivery as it travels through the queue.

    `payload` keeps GitHub's own key names and nesting; the frontend only drops keys the
    telemetry never reads (see `common.reduction`).
    """

    delivery_id: str
    event: str
    action: str
    received_at: datetime
    payload: dict[str, Any]
    hook_id: str = ""
    installation_target_type: str = ""
    installation_target_id: str = ""
    truncated: bool = False
    version: int = ENVELOPE_VERSION


class _EnvelopeSchema(Schema):
    version = fields.Integer(required=True, validate=validate.Equal(ENVELOPE_VERSION))
    delivery_id = fields.String(required=True, validate=validate.Length(min=1))
    event = fields.String(required=True, validate=validate.Length(min=1))
    action = fields.String(required=True)
    hook_id = fields.String(load_default="")
    installation_target_type = fields.String(load_default="")
    installation_target_id = fields.String(load_default="")
    received_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    truncated = fields.Boolean(load_default=False)
    payload = fields.Dict(keys=fields.String(), required=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> Envelope:
        return Envelope(**data)


_SCHEMA = _EnvelopeSchema()


def to_json_bytes(envelope: Envelope) -> bytes:
    """Serialize an envelope to compact JSON (before compression)."""
    document = _SCHEMA.dump(envelope)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode(envelope: Envelope) -> str:
    """Turn an envelope into queue message text: base64(gzip(JSON))."""
    compressed = gzip.compress(to_json_bytes(envelope), compresslevel=6, mtime=0)
    return base64.b64encode(compressed).decode("ascii")


def decode(text: str) -> Envelope:
    """Turn queue message text back into an envelope.

    Raises:
        EnvelopeError: the text is not base64, not gzip, not JSON, or not a valid envelope.
    """
    try:
        raw = gzip.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    except (binascii.Error, UnicodeEncodeError, OSError, EOFError, zlib.error) as exc:
        raise EnvelopeError(f"not base64-encoded gzip: {exc}") from exc
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise EnvelopeError("not a JSON object")
    try:
        envelope: Envelope = _SCHEMA.load(document)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid envelope: {exc.messages}") from exc
    return envelope


def encoded_size(text: str) -> int:
    """Bytes the message text takes against the queue's 64 KiB cap."""
    return len(text.encode("utf-8"))


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
