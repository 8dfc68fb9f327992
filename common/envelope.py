"""The versioned queue envelope and its codec: JSON, gzip-compressed, base64 text.

A queue message carries one envelope (the JSON document of `Envelope`) or a pack of several:
`{"version": 1, "envelopes": [<envelope>, ...]}` under the same base64(gzip(JSON)) encoding.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from common.json_limits import MAX_JSON_DEPTH, nesting_depth

ENVELOPE_VERSION = 1
PACK_VERSION = 1

# Azure Storage queue messages hold at most 64 KiB of text.
# https://learn.microsoft.com/en-us/rest/api/storageservices/put-message
MAX_MESSAGE_BYTES = 64 * 1024
# What a poison record (`common.queue.poison_record`) adds around the text it keeps: its reason
# (at most MAX_REASON_BYTES), ids, times and hash. The frontend keeps every message within
# MAX_ENVELOPE_BYTES, so that its poison record always holds it whole.
POISON_RECORD_OVERHEAD_BYTES = 2048
MAX_ENVELOPE_BYTES = MAX_MESSAGE_BYTES - POISON_RECORD_OVERHEAD_BYTES
# A message decompresses to far less (reduced payloads, 32 envelopes at most); more is a bomb.
MAX_DECOMPRESSED_BYTES = 1024 * 1024
# zlib reads the gzip format (header and CRC checked) with window bits 16 + 15.
GZIP_WBITS = 16 + zlib.MAX_WBITS


class EnvelopeError(ValueError):
    """A queue message that is not a valid envelope."""


@dataclass(frozen=True)
class Envelope:
    """One GitHub delivery: as the frontend parses it, and as it travels through the queue.

    `payload` keeps GitHub's own key names and nesting; before queueing, the frontend only
    drops keys the telemetry never reads (see `common.reduction`).
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
    return _json_bytes(_SCHEMA.dump(envelope))


def compress(raw: bytes) -> str:
    """Turn JSON bytes into queue message text: base64(gzip(JSON))."""
    compressed = gzip.compress(raw, compresslevel=6, mtime=0)
    return base64.b64encode(compressed).decode("ascii")


def encode(envelope: Envelope) -> str:
    """Turn an envelope into queue message text: base64(gzip(JSON))."""
    return compress(to_json_bytes(envelope))


def encode_pack(documents: Sequence[bytes]) -> str:
    """Queue message text of a pack, from the JSON bytes of each envelope (`to_json_bytes`)."""
    head = b'{"version":%d,"envelopes":[' % PACK_VERSION
    return compress(head + b",".join(documents) + b"]}")


@dataclass(frozen=True)
class Member:
    """One envelope of a message: decoded, or the error that made it invalid.

    `document` is the member's JSON value as it travelled; `text()` re-encodes it alone, so a
    poison copy of an invalid member holds exactly what was sent.
    """

    index: int
    count: int
    document: Any
    envelope: Envelope | None = None
    error: EnvelopeError | None = None

    def text(self) -> str:
        """This member alone as queue message text (a single-envelope message)."""
        return compress(_json_bytes(self.document))


def decode(text: str) -> Envelope:
    """Turn the text of a single-envelope message back into its envelope.

    Raises:
        EnvelopeError: the text is not base64, not gzip, not JSON, not a valid envelope, or a
            pack (use `decode_members`).
    """
    document = _document(text)
    if _is_pack(document):
        raise EnvelopeError("a pack of envelopes, not a single envelope")
    return _load(document)


def decode_members(text: str) -> list[Member]:
    """Every member of a message, one for a single envelope; invalid pack members included.

    Raises:
        EnvelopeError: the message as a whole is unreadable: not base64/gzip/JSON, a single
            envelope that is invalid, or a pack whose wrapper is invalid (wrong version, no
            non-empty `envelopes` list). An invalid member of a valid pack does not raise: its
            `Member.error` says why and the other members stand.
    """
    document = _document(text)
    if not _is_pack(document):
        return [Member(0, 1, document, envelope=_load(document))]
    version = document.get("version")
    # `True == 1` in Python: a boolean is not a version number.
    if (
        isinstance(version, bool)
        or version != PACK_VERSION
        or set(document)
        != {
            "version",
            "envelopes",
        }
    ):
        raise EnvelopeError(f"invalid pack: version must be {PACK_VERSION}, no other fields")
    members = document["envelopes"]
    if not isinstance(members, list) or not members:
        raise EnvelopeError("invalid pack: envelopes must be a non-empty list")
    decoded: list[Member] = []
    for index, member in enumerate(members):
        try:
            envelope = _load(member)
        except EnvelopeError as error:
            decoded.append(Member(index, len(members), member, error=error))
        else:
            decoded.append(Member(index, len(members), member, envelope=envelope))
    return decoded


def decode_message(text: str) -> list[Envelope]:
    """The envelopes of a message, single or pack, all of them valid.

    Raises:
        EnvelopeError: the message is unreadable, or a member of a pack is invalid.
    """
    envelopes: list[Envelope] = []
    for member in decode_members(text):
        if member.envelope is None:
            raise EnvelopeError(f"member {member.index} of {member.count}: {member.error}")
        envelopes.append(member.envelope)
    return envelopes


def encoded_size(text: str) -> int:
    """Bytes the message text takes against the queue's 64 KiB cap."""
    return len(text.encode("utf-8"))


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _json_bytes(document: Any) -> bytes:
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate ("\\ud800" in the JSON) has no UTF-8 form: keep it as an escape.
        return json.dumps(document, separators=(",", ":")).encode("ascii")


def _gunzip(text: str) -> bytes:
    """The bytes a base64 text of one gzip member inflates to, at most MAX + 1 of them.

    zlib on the bytes in hand, not GzipFile: a GzipFile read with a limit this large cost
    more than a millisecond per message in a worker, for a few kilobytes of output.
    """
    try:
        compressed = base64.b64decode(text.encode("ascii"), validate=True)
        if not compressed:
            return b""  # nothing at all: "not JSON" says it best
        inflater = zlib.decompressobj(wbits=GZIP_WBITS)
        # Never inflate a gzip bomb whole: stop one byte past the limit.
        raw = inflater.decompress(compressed, MAX_DECOMPRESSED_BYTES + 1)
    except (binascii.Error, UnicodeEncodeError, zlib.error) as exc:
        raise EnvelopeError(f"not base64-encoded gzip: {exc}") from exc
    if len(raw) > MAX_DECOMPRESSED_BYTES:
        return raw
    if not inflater.eof:
        raise EnvelopeError("not base64-encoded gzip: the compressed data ends early")
    if inflater.unused_data:
        raise EnvelopeError("not base64-encoded gzip: bytes after the end of the data")
    return raw


def _document(text: str) -> Any:
    raw = _gunzip(text)
    if len(raw) > MAX_DECOMPRESSED_BYTES:
        raise EnvelopeError(f"decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # ValueError: also an int of too many digits
        raise EnvelopeError(f"not JSON: {str(exc)[:200]}") from exc
    if nesting_depth(document) > MAX_JSON_DEPTH:
        raise EnvelopeError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return document


def _is_pack(document: Any) -> bool:
    return isinstance(document, dict) and "envelopes" in document


def _load(document: Any) -> Envelope:
    if not isinstance(document, dict):
        raise EnvelopeError("not a JSON object")
    try:
        envelope: Envelope = _SCHEMA.load(document)
    except ValidationError as exc:
        raise EnvelopeError(f"invalid envelope: {exc.messages}") from exc
    return envelope
