"""Sample ledger rows and ETags, shared by the $batch codec and transport tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions

KEY = "workflow_job:123:completed"
ETAG = "W/\"datetime'2024-05-01T10%3A00%3A00.1234567Z'\""
ETAG_2 = "W/\"datetime'2024-05-01T10%3A00%3A01.0000000Z'\""
WRITTEN_AT = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
IF_MATCH = {"etag": ETAG, "match_condition": MatchConditions.IfNotModified}


def row(key: str = KEY, partition: str = "00", **properties: Any) -> dict[str, Any]:
    """A ledger row as layout.to_row writes it, with `properties` on top."""
    base = {
        "State": "claimed",
        "Owner": "worker-7",
        "LeaseUntil": WRITTEN_AT,
        "UpdatedAt": WRITTEN_AT,
    }
    return {"PartitionKey": partition, "RowKey": key, **base, **properties}
