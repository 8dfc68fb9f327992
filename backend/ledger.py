"""The seam for an idempotency ledger between mapping and export; no ledger by default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Ledger(Protocol):
    """Remembers which events were exported so redeliveries produce telemetry once.

    Both methods raise `backend.outcome.TransientError` when the ledger is unreachable; the
    worker then holds the batch exactly as it does through a sink outage.
    """

    def claim(self, keys: Sequence[str]) -> frozenset[str]:
        """Claim `keys` before their export; return those already exported (to be skipped)."""
        ...

    def mark_done(self, keys: Sequence[str]) -> None:
        """Record that the telemetry of `keys` was accepted by the sink."""
        ...


class NoLedger:
    """The default: claims nothing as done and records nothing."""

    def claim(self, keys: Sequence[str]) -> frozenset[str]:
        """Report no key as already exported."""
        return frozenset()

    def mark_done(self, keys: Sequence[str]) -> None:
        """Record nothing."""
