"""Settings of the backend worker pool and its idempotency ledger, read once at start.

Each name is read as `BACKEND_<NAME>` first, then `<NAME>`, so one `.env` serves both services.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from marshmallow import ValidationError

from common.logs import LogSettings, load_log_settings
from common.settings import (
    BACKEND_PREFIX,
    STORAGE_NAMES,
    EnvReader,
    SettingsError,
    StorageSettings,
    container_hint,
    near_misses,
    read_storage,
    spellings,
)

# The queue hands out at most 32 messages per receive.
# https://learn.microsoft.com/en-us/rest/api/storageservices/get-messages
MAX_MESSAGES_PER_BATCH = 32
# A longer sleep after an empty receive is a typo, not a setting.
MAX_POLL_INTERVAL_S = 3600.0
# Azure hides a received message for at most 7 days.
MAX_VISIBILITY_TIMEOUT_S = 7 * 24 * 3600
DEFAULT_VISIBILITY_TIMEOUT_S = 300
# Where the local JSONL sink writes when no Application Insights connection string is set.
DEFAULT_TELEMETRY_FILE = Path("var") / "telemetry.jsonl"
FILE_SINK = "file"
APPINSIGHTS_SINK = "appinsights"
TELEMETRY_SINKS = (FILE_SINK, APPINSIGHTS_SINK)

DEFAULT_TABLE_NAME = "githubtelemetryledger"
# GitHub lets a delivery be redelivered for 3 days; keep a margin over that window.
# https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks
MIN_RETENTION_H = 72
DEFAULT_RETENTION_H = 7 * 24
DEFAULT_PURGE_INTERVAL_S = 3600
MIN_PURGE_INTERVAL_S = 60
# Azure table names: 3-63 letters or digits, starting with a letter; "tables" is reserved.
# https://learn.microsoft.com/en-us/rest/api/storageservices/understanding-the-table-service-data-model
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")
# Application Insights' own convention for Entra ID ingestion, as its SDKs read it.
# https://learn.microsoft.com/en-us/azure/azure-monitor/app/azure-ad-authentication
_AUTHENTICATION = re.compile(
    r"Authorization=AAD(?:;ClientId=([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class EntraAuthentication:
    """Entra ID ingestion with a token of identity `client_id` (None: DefaultAzureCredential's)."""

    client_id: str | None = None


def parse_authentication(value: str) -> EntraAuthentication:
    """Read `Authorization=AAD` or `Authorization=AAD;ClientId=<guid>` (a trailing `;` allowed).

    Raises:
        ValueError: anything else; the message says what is expected.
    """
    match = _AUTHENTICATION.fullmatch(value.strip().rstrip(";"))
    if match is None:
        raise ValueError("must be 'Authorization=AAD' or 'Authorization=AAD;ClientId=<guid>'")
    client_id = match.group(1)
    return EntraAuthentication(client_id.lower() if client_id else None)


@dataclass(frozen=True)
class LedgerSettings:
    """Where the ledger lives and how long claims and entries last."""

    enabled: bool = True
    table_name: str = DEFAULT_TABLE_NAME
    lease_s: int = 2 * DEFAULT_VISIBILITY_TIMEOUT_S
    retention_h: float = DEFAULT_RETENTION_H
    purge_interval_s: int = DEFAULT_PURGE_INTERVAL_S

    @property
    def lease(self) -> timedelta:
        """How long a claim protects a key from other owners."""
        return timedelta(seconds=self.lease_s)

    @property
    def retention(self) -> timedelta:
        """How long an entry is kept after its last change."""
        return timedelta(hours=self.retention_h)


@dataclass(frozen=True)
class BackendSettings:
    """Settings of the backend worker pool."""

    storage: StorageSettings
    appinsights_connection_string: str | None
    poll_interval_s: float
    max_messages_per_batch: int
    visibility_timeout_s: int
    worker_processes: int
    max_dequeue_count: int
    telemetry_file: Path
    ledger: LedgerSettings
    # TELEMETRY_SINK as set: FILE_SINK, APPINSIGHTS_SINK or None (App Insights when configured)
    telemetry_sink: str | None = None
    logging: LogSettings = LogSettings()  # workers set their logging up from it
    # APPLICATIONINSIGHTS_AUTHENTICATION_STRING: None sends with the instrumentation key only
    appinsights_authentication: EntraAuthentication | None = None


def _check_table_name(value: str) -> None:
    if not _TABLE_NAME.fullmatch(value) or value.lower() == "tables":
        raise ValidationError(
            f"must be 3-63 letters or digits starting with a letter, got {value!r}"
        )


def _visibility_timeout_s(reader: EnvReader) -> int:
    """How long a received message stays hidden: 1 s to Azure's 7-day maximum, 300 by default."""
    return reader.integer(
        "VISIBILITY_TIMEOUT_SECONDS", DEFAULT_VISIBILITY_TIMEOUT_S, 1, MAX_VISIBILITY_TIMEOUT_S
    )


def _ledger(reader: EnvReader, visibility_timeout_s: int) -> LedgerSettings:
    """The ledger's settings; its lease defaults to twice the visibility timeout."""
    table_name = reader.text("LEDGER_TABLE_NAME", _check_table_name) or DEFAULT_TABLE_NAME
    lease_s = reader.integer("LEDGER_LEASE_SECONDS", 2 * visibility_timeout_s, 1)
    if lease_s < visibility_timeout_s:
        # A claim must outlive the message's invisibility, or a redelivered copy of an event
        # could be claimed while the first worker is still exporting it.
        raise SettingsError(
            f"{reader.name('LEDGER_LEASE_SECONDS')} ({lease_s}) must be at least "
            f"{reader.name('VISIBILITY_TIMEOUT_SECONDS')} ({visibility_timeout_s})"
        )
    retention_h = reader.number("LEDGER_RETENTION_HOURS", DEFAULT_RETENTION_H, MIN_RETENTION_H)
    return LedgerSettings(
        enabled=reader.flag("LEDGER_ENABLED", True),
        table_name=table_name,
        lease_s=lease_s,
        retention_h=retention_h,
        purge_interval_s=reader.integer(
            "LEDGER_PURGE_INTERVAL_SECONDS", DEFAULT_PURGE_INTERVAL_S, MIN_PURGE_INTERVAL_S
        ),
    )


def load_ledger_settings(env: Mapping[str, str]) -> LedgerSettings:
    """The ledger's part of the backend settings alone."""
    reader = EnvReader(env, BACKEND_PREFIX)
    return _ledger(reader, _visibility_timeout_s(reader))


def telemetry_file(env: Mapping[str, str]) -> Path:
    """The local sink's file: `BACKEND_TELEMETRY_FILE`, else `TELEMETRY_FILE`, else `var/`."""
    return EnvReader(env, BACKEND_PREFIX).path("TELEMETRY_FILE", DEFAULT_TELEMETRY_FILE)


def _check_sink(value: str) -> None:
    if value not in TELEMETRY_SINKS:
        raise ValidationError(f"must be {' or '.join(TELEMETRY_SINKS)}, got {value!r}")


def _check_authentication(value: str) -> None:
    try:
        parse_authentication(value)
    except ValueError as error:
        raise ValidationError(str(error)) from None


def _authentication(reader: EnvReader) -> EntraAuthentication | None:
    """`APPLICATIONINSIGHTS_AUTHENTICATION_STRING`, parsed; None when unset."""
    value = reader.text("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", _check_authentication)
    return None if value is None else parse_authentication(value)


def _telemetry_sink(reader: EnvReader, appinsights: str | None) -> str | None:
    """`TELEMETRY_SINK` as set (None when unset); `appinsights` needs a connection string."""
    chosen = reader.text("TELEMETRY_SINK", _check_sink)
    if chosen == APPINSIGHTS_SINK and not appinsights:
        raise SettingsError(
            f"{reader.name('TELEMETRY_SINK')} is appinsights but "
            "APPLICATIONINSIGHTS_CONNECTION_STRING is not set"
        )
    return chosen


def check_sink_choice(settings: BackendSettings, env: Mapping[str, str]) -> None:
    """Refuse a local telemetry file that nobody chose: it is lost with a container, or unread.

    Raises:
        SettingsError: no App Insights connection string, and `TELEMETRY_SINK` is not `file`.
    """
    if settings.telemetry_sink == FILE_SINK or settings.appinsights_connection_string:
        return
    where = container_hint(env)
    because = f" and this is a container ({where}), where a local file is lost" if where else ""
    raise SettingsError(
        f"APPLICATIONINSIGHTS_CONNECTION_STRING is not set{because}: set it, or set "
        "TELEMETRY_SINK=file to write telemetry to TELEMETRY_FILE (var/telemetry.jsonl by default)"
    )


# What the backend reads, for warnings about near misses even when loading stops half-way.
BACKEND_NAMES = (
    *STORAGE_NAMES,
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "TELEMETRY_SINK",
    "TELEMETRY_FILE",
    "POLL_INTERVAL_SECONDS",
    "MAX_MESSAGES_PER_BATCH",
    "VISIBILITY_TIMEOUT_SECONDS",
    "WORKER_PROCESSES",
    "MAX_DEQUEUE_COUNT",
    "LEDGER_ENABLED",
    "LEDGER_TABLE_NAME",
    "LEDGER_LEASE_SECONDS",
    "LEDGER_RETENTION_HOURS",
    "LEDGER_PURGE_INTERVAL_SECONDS",
)
# Read unprefixed by other parts of the backend: its health check and the log setup.
OTHER_BACKEND_VARIABLES = ("BACKEND_HEARTBEAT_FILE", "LOG_FORMAT", "LOG_LEVEL")


def backend_warnings(env: Mapping[str, str], read: set[str] | None = None) -> list[str]:
    """Names in `env` the backend does not read but that look meant for it."""
    names = spellings({*BACKEND_NAMES, *(read or ())}, BACKEND_PREFIX)
    return near_misses(env, names | set(OTHER_BACKEND_VARIABLES), owned=(BACKEND_PREFIX,))


def load_backend_settings(
    env: Mapping[str, str], warnings: list[str] | None = None
) -> BackendSettings:
    """Backend settings, the ledger's included; `warnings` collects names that look mistyped.

    Raises:
        SettingsError: a setting is missing or malformed; the message names it.
    """
    reader = EnvReader(env, BACKEND_PREFIX)
    try:
        return _load(reader, env)
    finally:
        if warnings is not None:
            warnings.extend(backend_warnings(env, reader.names))


def _load(reader: EnvReader, env: Mapping[str, str]) -> BackendSettings:
    storage = read_storage(reader)
    appinsights_connection_string = reader.text("APPLICATIONINSIGHTS_CONNECTION_STRING")
    sink = _telemetry_sink(reader, appinsights_connection_string)
    authentication = _authentication(reader)
    poll_interval_s = reader.number("POLL_INTERVAL_SECONDS", 5.0, 0.0, MAX_POLL_INTERVAL_S)
    batch = reader.integer("MAX_MESSAGES_PER_BATCH", MAX_MESSAGES_PER_BATCH, 1)
    visibility_timeout_s = _visibility_timeout_s(reader)
    return BackendSettings(
        storage=storage,
        appinsights_connection_string=appinsights_connection_string,
        poll_interval_s=poll_interval_s,
        max_messages_per_batch=min(batch, MAX_MESSAGES_PER_BATCH),
        visibility_timeout_s=visibility_timeout_s,
        worker_processes=reader.integer("WORKER_PROCESSES", os.cpu_count() or 1, 1),
        max_dequeue_count=reader.integer("MAX_DEQUEUE_COUNT", 5, 1),
        telemetry_file=reader.path("TELEMETRY_FILE", DEFAULT_TELEMETRY_FILE),
        ledger=_ledger(reader, visibility_timeout_s),
        telemetry_sink=sink,
        logging=load_log_settings(env),
        appinsights_authentication=authentication,
    )
