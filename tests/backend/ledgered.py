"""Helpers for worker tests with a ledger: the in-memory ledger counted, on the fake clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.idempotency import ClaimStatus, InMemoryLedger
from tests.backend.fakes import FakeTime, message_text
from tools.payloads import JOB_ID, workflow_job_payload

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE_S = 30  # three of the worker tests' visibility timeouts
OWNER = "worker-under-test"
JOB_KEY = f"workflow_job:{JOB_ID}:completed"
JOB_ITEMS = ["WorkflowJob"] + ["WorkflowStep"] * 4


class CountingLedger(InMemoryLedger):
    """The in-memory ledger, recording each call as (method, keys, now)."""

    def __init__(self, lease_s: float) -> None:
        super().__init__(lease_s=lease_s)
        self.calls: list[tuple[str, list[str], datetime | None]] = []

    def claim(self, keys: Iterable[str], owner: str, now: datetime) -> dict[str, ClaimStatus]:
        keys = list(keys)
        self.calls.append(("claim", keys, now))
        return super().claim(keys, owner, now)

    def complete(self, keys: Iterable[str], owner: str, now: datetime) -> frozenset[str]:
        keys = list(keys)
        self.calls.append(("complete", keys, now))
        return super().complete(keys, owner, now)

    def abandon(self, keys: Iterable[str], owner: str) -> None:
        keys = list(keys)
        self.calls.append(("abandon", keys, None))
        super().abandon(keys, owner)

    def claim_purge_turn(self, now: datetime, interval_s: float) -> bool:
        self.calls.append(("claim_purge_turn", [], now))
        return super().claim_purge_turn(now, interval_s)

    def methods(self) -> list[str]:
        """The methods called, in order (purge turns left out)."""
        return [method for method, _keys, _now in self.calls if method != "claim_purge_turn"]


def wall_clock(fake_time: FakeTime) -> datetime:
    """The ledger's "now" on the fake clock."""
    return T0 + timedelta(seconds=fake_time.now)


def job_text(action: str = "completed", delivery_id: str = "d-1", **overrides: Any) -> str:
    """Queue text of the test job's `action` delivery."""
    return message_text(workflow_job_payload(action, **overrides), delivery_id=delivery_id)
