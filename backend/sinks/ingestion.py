"""How an Application Insights ingestion (`/v2.1/track`) answer maps to per-item outcomes.

https://learn.microsoft.com/en-us/azure/azure-monitor/app/api-custom-events-metrics
Status codes as the Azure exporters treat them: 200 all accepted, 206 partial with per-item
errors, 408/429/5xx retry later; 401/403/402/439 and unknown codes are configuration or quota
problems that an operator fixes, so items are kept (retried) rather than dropped.
"""

from __future__ import annotations

import json
from typing import Any

from backend.sinks.base import ExportResult, Rejection

RETRYABLE_ITEM_STATUS = frozenset({408, 429, 439, 500, 502, 503, 504})
# Whole-response statuses that say the batch itself is invalid, so retrying cannot help.
INVALID_BATCH_STATUS = frozenset({400, 413})


def retry_after_s(header: str | None) -> float | None:
    """Parse a `Retry-After` header given in seconds; anything else is no hint."""
    if not header:
        return None
    try:
        return max(float(header), 0.0)
    except ValueError:
        return None


def _errors(body: bytes) -> list[dict[str, Any]] | None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return None
    return [error for error in errors if isinstance(error, dict)]


def classify(count: int, status: int, body: bytes, retry_after: str | None) -> ExportResult:
    """Turn one ingestion answer for a batch of `count` items into an ExportResult."""
    hint = retry_after_s(retry_after)
    if status == 200:
        return ExportResult.all_accepted(count)
    errors = _errors(body) if status in {206} | INVALID_BATCH_STATUS else None
    if errors is None and status not in INVALID_BATCH_STATUS:
        return ExportResult.all_retryable(count, f"ingestion answered HTTP {status}", hint)
    retryable: list[int] = []
    rejected: list[Rejection] = []
    failed: set[int] = set()
    for error in errors or []:
        index = error.get("index")
        if not isinstance(index, int) or not 0 <= index < count or index in failed:
            continue
        failed.add(index)
        item_status = error.get("statusCode")
        if isinstance(item_status, int) and item_status in RETRYABLE_ITEM_STATUS:
            retryable.append(index)
        else:
            message = str(error.get("message", ""))[:200]
            rejected.append(
                Rejection(index, f"ingestion rejected the item: {item_status} {message}")
            )
    # A 206 accepted every item it does not list. A 400/413 accepted none: only the items it
    # lists as retryable may succeed later, the others (listed or not) never will.
    unlisted = tuple(i for i in range(count) if i not in failed)
    accepted = unlisted if status == 206 else ()
    if status in INVALID_BATCH_STATUS:
        rejected += [Rejection(i, f"ingestion answered {status}") for i in unlisted]
    return ExportResult(
        accepted=accepted,
        retryable=tuple(sorted(retryable)),
        rejected=tuple(sorted(rejected, key=lambda rejection: rejection.index)),
        detail=f"HTTP {status}: {len(accepted)} of {count} accepted",
        retry_after_s=hint,
    )
