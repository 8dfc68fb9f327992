"""The idempotency ledger: each event key is exported once across workers and redeliveries."""

from backend.idempotency.client import LedgerTimeouts
from backend.idempotency.layout import claim_round_trips_bound
from backend.idempotency.ledger import (
    ClaimStatus,
    Ledger,
    LedgerError,
    LedgerSettings,
    LedgerUnavailable,
    entity_of,
    load_ledger_settings,
    owner_id,
    purge_if_due,
)
from backend.idempotency.memory import InMemoryLedger, NullLedger
from backend.idempotency.table import (
    TableLedger,
    create_ledger,
    create_table_ledger,
)

__all__ = [
    "ClaimStatus",
    "InMemoryLedger",
    "Ledger",
    "LedgerError",
    "LedgerSettings",
    "LedgerTimeouts",
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
