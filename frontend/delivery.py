"""Turn a webhook request (headers, content type, raw body, time) into the envelope it queues as.

Pure: no Flask, no queue, no clock. Each way a request can be wrong is one named error.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from marshmallow import Schema

from common.envelope import Envelope
from common.json_limits import MAX_JSON_DEPTH, finite_float, nesting_depth
from frontend.schemas import WorkflowJobIds, WorkflowRunIds, describe_errors

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MEDIA_TYPES = (JSON, FORM)

EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"
HOOK_ID_HEADER = "X-GitHub-Hook-ID"
TARGET_TYPE_HEADER = "X-GitHub-Hook-Installation-Target-Type"
TARGET_ID_HEADER = "X-GitHub-Hook-Installation-Target-ID"

# GitHub's values are a GUID, an event name and numbers; a longer header is not from GitHub
# and would only eat into the queue message's 64 KiB.
MAX_HEADER_CHARS = 200
# A NUL or a lone surrogate: text no backend store keeps as it came.
_UNENCODABLE = re.compile("[\x00\ud800-\udfff]")
# GitHub's form body has one field, `payload`.
_MAX_FORM_FIELDS = 8


class DeliveryError(Exception):
    """A request that cannot be a GitHub delivery."""


class UnsupportedMediaType(DeliveryError):
    """A content type GitHub does not send."""


class InvalidDelivery(DeliveryError):
    """Headers or body that cannot be what GitHub sends for the event."""


class Route(Enum):
    """What the frontend does with an event."""

    QUEUE = "queue"
    PONG = "pong"
    IGNORE = "ignore"


@dataclass(frozen=True)
class EventRule:
    """How one event is handled, and the schema its payload must satisfy to be queued."""

    route: Route
    schema: Schema | None = None


# The accepted events; every other event is answered 200 and ignored.
EVENTS: Mapping[str, EventRule] = {
    "workflow_run": EventRule(Route.QUEUE, WorkflowRunIds()),
    "workflow_job": EventRule(Route.QUEUE, WorkflowJobIds()),
    "ping": EventRule(Route.PONG),
}
_IGNORED = EventRule(Route.IGNORE)


def rule_for(event: str) -> EventRule:
    """The rule of `event` from the table; unknown events are ignored."""
    return EVENTS.get(event, _IGNORED)


def require_media_type(content_type: str | None) -> str:
    """The media type of a `Content-Type` header, if GitHub sends it.

    Raises:
        UnsupportedMediaType: the header is missing or names another media type.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        shown = media_type or "(none)"
        raise UnsupportedMediaType(f"content type {shown} is not supported: send {JSON} or {FORM}")
    return media_type


def parse_delivery(
    headers: Mapping[str, str], content_type: str | None, body: bytes, received_at: datetime
) -> Envelope:
    """Parse and validate a delivery whose signature was already verified.

    The envelope carries the whole payload; packing reduces it. `rule_for(event).route` says
    what the frontend does with it.

    Raises:
        UnsupportedMediaType: the content type is not one GitHub sends.
        InvalidDelivery: a required header is missing, or the body is not a JSON object with
            the ids the event needs.
    """
    media_type = require_media_type(content_type)
    lowered = {name.lower(): value for name, value in headers.items()}
    event = _header(lowered, EVENT_HEADER, required=True)
    delivery_id = _header(lowered, DELIVERY_HEADER, required=True)
    payload = _json_object(_json_text(media_type, body))
    rule = rule_for(event)
    if rule.schema is not None:
        errors = rule.schema.validate(payload)
        if errors:
            details = "; ".join(describe_errors(errors))
            raise InvalidDelivery(f"{event} payload lacks what the backend needs: {details}")
    action = payload.get("action")
    return Envelope(
        delivery_id=delivery_id,
        event=event,
        action=action if isinstance(action, str) else "",
        received_at=received_at,
        payload=payload,
        hook_id=_header(lowered, HOOK_ID_HEADER),
        installation_target_type=_header(lowered, TARGET_TYPE_HEADER),
        installation_target_id=_header(lowered, TARGET_ID_HEADER),
    )


def _header(lowered: Mapping[str, str], name: str, required: bool = False) -> str:
    value = lowered.get(name.lower(), "").strip()
    if required and not value:
        raise InvalidDelivery(f"missing {name} header")
    if len(value) > MAX_HEADER_CHARS:
        raise InvalidDelivery(f"{name} header is longer than {MAX_HEADER_CHARS} characters")
    return value


def _json_text(media_type: str, body: bytes) -> bytes | str:
    """The JSON document of the body: the body itself, or the `payload` field of a form."""
    if media_type == JSON:
        return body
    try:
        fields = urllib.parse.parse_qs(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            errors="strict",
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError as error:
        raise InvalidDelivery(f"form body is not URL-encoded: {error}") from None
    values = fields.get("payload", [])
    if len(values) != 1:
        raise InvalidDelivery("form body must have exactly one payload field")
    return values[0]


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}
_JSON_KINDS[type(None)] = "null"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _json_object(text: bytes | str) -> dict[str, Any]:
    too_deep = InvalidDelivery(f"body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(text, bytes):
        # json.loads would let UTF-8-encoded surrogates through ("surrogatepass").
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidDelivery(f"body is not valid JSON: not UTF-8 ({error.reason})") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=finite_float)
    except ValueError as error:
        raise InvalidDelivery(f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise too_deep from None  # deeper than the interpreter parses: deeper than the cap
    if nesting_depth(document) > MAX_JSON_DEPTH:
        raise too_deep
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), "value")
        raise InvalidDelivery(f"body is a JSON {kind}, not an object")
    # Only a \u escape can put a NUL or a lone surrogate into a string of valid UTF-8 JSON.
    if "\\u" in text and _has_unencodable_text(document):
        raise InvalidDelivery("body holds a NUL or a lone surrogate in a string")
    return document


def _has_unencodable_text(value: Any) -> bool:
    """Whether any string of a parsed document (keys included) holds a NUL or lone surrogate."""
    if isinstance(value, str):
        return _UNENCODABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_unencodable_text(k) or _has_unencodable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_unencodable_text(item) for item in value)
    return False
