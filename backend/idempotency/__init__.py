"""The idempotency ledger: each event key is exported once across workers and redeliveries.

The Azure-backed names (`TableLedger`, `create_ledger`, ...) are imported on first use, so the
supervisor, which only needs the interface, loads no Azure SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from backend.idempotency.ledger import (
    ClaimStatus,
    Ledger,
    LedgerError,
    LedgerSettings,
    LedgerUnavailable,
    entity_of,
    owner_id,
    purge_if_due,
)
from backend.idempotency.memory import InMemoryLedger, NullLedger
from backend.settings import load_ledger_settings

if TYPE_CHECKING:
    from backend.idempotency.factory import create_ledger, create_table_ledger
    from backend.idempotency.layout import claim_round_trips_bound
    from backend.idempotency.table import TableLedger

_LAZY = {
    "TableLedger": "backend.idempotency.table",
    "claim_round_trips_bound": "backend.idempotency.layout",
    "create_ledger": "backend.idempotency.factory",
    "create_table_ledger": "backend.idempotency.factory",
}


def __getattr__(name: str) -> Any:
    """Import an Azure-backed name the first time it is asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ClaimStatus",
    "InMemoryLedger",
    "Ledger",
    "LedgerError",
    "LedgerSettings",
    "LedgerUnavailable",
    "NullLedger",
    "TableLedger",
    "claim_round_trips_bound",
    "create_ledger",
    "create_table_ledger",
    "entity_of",
    "load_ledger_settings",
    "owner_id",
    "purge_if_due",
]
