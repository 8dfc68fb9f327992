"""Ledger fixtures: one contract over the in-memory fake and Azure Tables on Azurite.

On Azurite it runs twice: transactions through the hand-written $batch and through the SDK's
own `submit_transaction`, the fallback the ledger takes if the SDK moves what the first needs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from backend.idempotency import InMemoryLedger, Ledger, LedgerSettings, TableLedger
from common.settings import StorageSettings
from tools.azurite import Azurite

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE_S = 600


def unique_table_name() -> str:
    """A valid table name (a letter then letters and digits, 3-63 chars) unique to one test."""
    return f"ledger{uuid.uuid4().hex[:24]}"


def table_ledger(
    azurite: Azurite, table_name: str | None = None, *, fast_transactions: bool = True
) -> TableLedger:
    """A Table ledger on `azurite` with a table of its own (created on first use)."""
    storage = StorageSettings(azurite.connection_string, None, "unused")
    settings = LedgerSettings(table_name=table_name or unique_table_name(), lease_s=LEASE_S)
    return TableLedger(storage, settings, fast_transactions=fast_transactions)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("azurite", marks=pytest.mark.azurite),
        pytest.param("azurite-sdk", marks=pytest.mark.azurite),
        pytest.param("azurite-oauth", marks=pytest.mark.azurite),
        pytest.param("azurite-oauth-sdk", marks=pytest.mark.azurite),
    ]
)
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    """The same contract against the fake and Azurite, through either transport.

    The "-oauth" runs reach the table with a managed identity's tokens and no key.
    """
    if request.param == "memory":
        yield InMemoryLedger(lease_s=LEASE_S)
        return
    fast = not request.param.endswith("-sdk")
    if "oauth" in request.param:
        storage: StorageSettings = request.getfixturevalue("oauth_storage_settings")
        settings = LedgerSettings(table_name=unique_table_name(), lease_s=LEASE_S)
        table = TableLedger(storage, settings, fast_transactions=fast)
    else:
        table = table_ledger(request.getfixturevalue("azurite"), fast_transactions=fast)
    yield table
    table.close()
