"""What an Application Insights ingestion (`/v2.1/track`) answer means for the items it carried.

- 200: every item accepted. 206: the items listed in `errors` failed, the others were accepted.
- Per item, 408/429/439/5xx are transient; "Invalid instrumentation key" is a configuration
  error (the whole batch is held, never poisoned); any other error is a rejection no retry can
  fix, named with the service's own message.
- 401/403 (Entra ID authentication required, token missing or wrong), 404 (no track endpoint
  there) and an invalid key for every item are configuration errors; 402/439 (quota) and
  408/429/5xx are transient. All hold the batch, honouring `Retry-After` (seconds or a date).
- 413, and a 400 that names no item, say the request was refused, not an item: split it.
- A 206 whose body cannot be read says nothing about which items were accepted: unless it
  counts every item as accepted, all are sent again (see docs/ingestion.md for the trade-off).

https://learn.microsoft.com/en-us/azure/azure-monitor/app/api-custom-events-metrics
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from backend.sinks.base import ExportResult, Rejection

RETRYABLE_ITEM_STATUS = frozenset({408, 429, 439, 500, 502, 503, 504})
INVALID_KEY = "invalid instrumentation key"
# Whole-request answers an operator must fix; the batch waits for them like for an outage.
CONFIGURATION_STATUS = {
    401: "authentication required: the token is missing or not accepted "
    "(APPLICATIONINSIGHTS_AUTHENTICATION_STRING, the identity's role)",
    403: "authentication refused: the identity may not publish to this resource",
    404: "no track endpoint at the IngestionEndpoint of APPLICATIONINSIGHTS_CONNECTION_STRING",
    402: "the monthly quota is exhausted",
    439: "the daily cap is reached",
}
MAX_MESSAGE_CHARS = 300
_ITEMS_ACCEPTED = re.compile(rb'"itemsAccepted"\s*:\s*(\d+)')


@dataclass(frozen=True)
class Answer:
    """One track answer for the items of its request, by position in that request.

    `split`: the request (not an item) was refused; `configuration`: the cause an operator must
    fix, logged loudly while the batch is held.
    """

    result: ExportResult
    split: bool = False
    configuration: str = ""
    status: int = 0
    message: str = ""


def retry_after_s(header: str | None, now: datetime | None = None) -> float | None:
    """Parse `Retry-After`: delay seconds or an HTTP date; anything else is no hint."""
    if not header:
        return None
    text = header.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _errors(body: bytes) -> list[dict[str, Any]] | None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return None
    return [error for error in errors if isinstance(error, dict)]


def _excerpt(body: bytes) -> str:
    return body[:MAX_MESSAGE_CHARS].decode("utf-8", "replace").strip()


def classify(
    count: int, status: int, body: bytes, retry_after: str | None, now: datetime | None = None
) -> Answer:
    """Turn one ingestion answer for a request of `count` items into an Answer."""
    hint = retry_after_s(retry_after, now)
    detail = f"ingestion answered HTTP {status}"
    if status == 200:
        return Answer(ExportResult.all_accepted(count), status=status)
    if status == 413:
        return Answer(ExportResult.all_retryable(count, detail), split=True, status=status)
    if status in CONFIGURATION_STATUS:
        cause = f"HTTP {status}: {CONFIGURATION_STATUS[status]}"
        result = ExportResult.all_retryable(count, cause, hint)
        return Answer(result, configuration=cause, status=status)
    errors = _errors(body) if status in {206, 400} else None
    if status == 206 and errors is None:
        return _unreadable_partial(count, body, hint)
    if status == 400 and not errors:
        # Nothing names an item: the request as a whole was refused; halves will tell which.
        result = ExportResult.all_retryable(count, detail)
        return Answer(result, split=True, status=status, message=_excerpt(body))
    if errors is None:
        return Answer(ExportResult.all_retryable(count, detail, hint), status=status)
    return _per_item(count, status, errors, hint)


def _unreadable_partial(count: int, body: bytes, hint: float | None) -> Answer:
    match = _ITEMS_ACCEPTED.search(body)
    if match is not None and int(match.group(1)) == count:
        return Answer(ExportResult.all_accepted(count), status=206)
    detail = "ingestion answered HTTP 206 without a readable body: every item is sent again"
    return Answer(ExportResult.all_retryable(count, detail, hint), status=206)


def _per_item(count: int, status: int, errors: list[dict[str, Any]], hint: float | None) -> Answer:
    retryable: list[int] = []
    rejected: list[Rejection] = []
    refused_key = 0
    failed: set[int] = set()
    for error in errors:
        index = error.get("index")
        if not isinstance(index, int) or not 0 <= index < count or index in failed:
            continue
        failed.add(index)
        item_status = error.get("statusCode")
        message = str(error.get("message", ""))[:MAX_MESSAGE_CHARS]
        if INVALID_KEY in message.lower():
            refused_key += 1
            retryable.append(index)
        elif isinstance(item_status, int) and item_status in RETRYABLE_ITEM_STATUS:
            retryable.append(index)
        else:
            reason = f"ingestion refused the item: {item_status} {message}".rstrip()
            rejected.append(Rejection(index, reason))
    unlisted = [index for index in range(count) if index not in failed]
    # A 206 accepted every item it does not list; a 400 accepted none, so those are resent.
    accepted = tuple(unlisted) if status == 206 else ()
    if status != 206:
        retryable += unlisted
    configuration = ""
    if refused_key:
        configuration = (
            f"HTTP {status}: Invalid instrumentation key ({refused_key} of {count} items): "
            "check the InstrumentationKey of APPLICATIONINSIGHTS_CONNECTION_STRING"
        )
    result = ExportResult(
        accepted=accepted,
        retryable=tuple(sorted(retryable)),
        rejected=tuple(sorted(rejected, key=lambda rejection: rejection.index)),
        detail=configuration or f"HTTP {status}: {len(accepted)} of {count} accepted",
        retry_after_s=hint,
    )
    return Answer(result, configuration=configuration, status=status)
