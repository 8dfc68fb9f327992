"""Build the ledger the settings ask for: the Table ledger, or the null one when disabled."""

from __future__ import annotations

import logging

from backend.idempotency.ledger import Ledger, LedgerSettings, LedgerUnavailable
from backend.idempotency.memory import NullLedger
from backend.idempotency.store import LEDGER_TIMEOUTS
from backend.idempotency.table import TableLedger
from common.azure_clients import ClientTimeouts
from common.settings import StorageSettings

log = logging.getLogger(__name__)


def create_table_ledger(
    storage: StorageSettings, settings: LedgerSettings, timeouts: ClientTimeouts = LEDGER_TIMEOUTS
) -> TableLedger:
    """Build the Table ledger and create its table if missing (best effort: calls create it too)."""
    ledger = TableLedger(storage, settings, timeouts)
    try:
        ledger.ensure_table()
    except LedgerUnavailable as error:
        log.warning("ledger table %s not reachable at start: %s", settings.table_name, error)
    return ledger


def create_ledger(storage: StorageSettings, settings: LedgerSettings) -> Ledger:
    """The ledger the settings ask for: the Table ledger, or NullLedger when disabled."""
    if not settings.enabled:
        log.warning("idempotency ledger disabled: redelivered events will be exported again")
        return NullLedger()
    return create_table_ledger(storage, settings)
