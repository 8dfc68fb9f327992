"""Settings for both services, read once from the environment (and `.env`) into frozen values."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_QUEUE_NAME = "github-webhook-events"
POISON_SUFFIX = "-poison"
# Azure queue names: 3-63 lowercase letters, digits and single inner hyphens; the poison queue
# `<name>-poison` must obey the same rule, so the name itself may have at most 56 characters.
# https://learn.microsoft.com/en-us/rest/api/storageservices/naming-queues-and-metadata
_QUEUE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_QUEUE_NAME_CHARS = 63 - len(POISON_SUFFIX)
MAX_PORT = 65535
# `.env`: an unquoted value ends where whitespace and `#` start a comment.
_INLINE_COMMENT = re.compile(r"\s+#.*$")
# A longer sleep after an empty receive is a typo, not a setting.
MAX_POLL_INTERVAL_S = 3600.0
# Azure hides a received message for at most 7 days.
# https://learn.microsoft.com/en-us/rest/api/storageservices/get-messages
MAX_VISIBILITY_TIMEOUT_S = 7 * 24 * 3600
DEFAULT_VISIBILITY_TIMEOUT_S = 300
# Where the local JSONL sink writes when no Application Insights connection string is set.
DEFAULT_TELEMETRY_FILE = Path("var") / "telemetry.jsonl"
BACKEND_PREFIX = "BACKEND_"


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message says what to set."""


@dataclass(frozen=True)
class StorageSettings:
    """Where the queue lives: a connection string (Azurite, keys) or an account name (Entra ID)."""

    connection_string: str | None
    account_name: str | None
    queue_name: str

    @property
    def poison_queue_name(self) -> str:
        """The dead-letter queue beside the main one."""
        return f"{self.queue_name}{POISON_SUFFIX}"


@dataclass(frozen=True)
class FrontendSettings:
    """Settings of the webhook frontend."""

    host: str
    port: int
    webhook_secrets: tuple[str, ...]
    storage: StorageSettings
    packing: bool = True  # deliveries arriving during a send share the next queue message


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


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file: `KEY=VALUE` lines, `#` comments, optional quotes, `export` prefix."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or "=" not in stripped:
            continue
        key, _, value = stripped.removeprefix("export ").partition("=")
        values[key.strip()] = _dotenv_value(value)
    return values


def _dotenv_value(raw: str) -> str:
    """A value without its quotes, or without a ` # comment` after it (quoted or not)."""
    value = raw.strip()
    if value[:1] in {"'", '"'}:
        closing = value.find(value[0], 1)
        rest = value[closing + 1 :].strip() if closing > 0 else None
        if rest is not None and (not rest or rest.startswith("#")):
            return value[1:closing]
        if len(value) >= 2 and value[-1] == value[0]:
            return value[1:-1]  # a quote inside quotes, as before
    return _INLINE_COMMENT.sub("", raw).strip()


def environment(dotenv: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over the values of `.env` (the real environment wins)."""
    merged = read_dotenv(dotenv) if dotenv is not None else {}
    merged.update(os.environ)
    return merged


def lookup(env: Mapping[str, str], name: str, prefix: str) -> str | None:
    """Read `prefix + name` first, then `name`; empty strings count as unset."""
    for key in (f"{prefix}{name}", name) if prefix else (name,):
        value = env.get(key, "").strip()
        if value:
            return value
    return None


def number(
    env: Mapping[str, str],
    name: str,
    prefix: str,
    default: float,
    minimum: float,
    maximum: float = math.inf,
) -> float:
    """Read a finite number within [minimum, maximum]; `nan` and `inf` are refused."""
    raw = lookup(env, name, prefix)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{prefix}{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{prefix}{name} must be a finite number, got {raw!r}")
    if value < minimum:
        raise SettingsError(f"{prefix}{name} must be at least {minimum:g}, got {raw!r}")
    if value > maximum:
        raise SettingsError(f"{prefix}{name} must be at most {maximum:g}, got {raw!r}")
    return value


def integer(
    env: Mapping[str, str],
    name: str,
    prefix: str,
    default: int,
    minimum: int,
    maximum: float = math.inf,
) -> int:
    """Read a whole number within [minimum, maximum]."""
    value = number(env, name, prefix, default, minimum, maximum)
    if value != int(value):
        raise SettingsError(f"{prefix}{name} must be a whole number, got {value:g}")
    return int(value)


def flag(env: Mapping[str, str], name: str, prefix: str, default: bool) -> bool:
    """Read a true/false setting (`true/false`, `yes/no`, `on/off`, `1/0`)."""
    raw = lookup(env, name, prefix)
    if raw is None:
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{prefix}{name} must be true or false, got {raw!r}")


def _check_connection_string(value: str, name: str) -> None:
    """Fail at start, not on the first request, when a connection string cannot be one."""
    parts = [part for part in value.split(";") if part.strip()]
    keys = {part.partition("=")[0].strip().lower() for part in parts}
    if not parts or any("=" not in part for part in parts):
        raise SettingsError(f"{name} is not a connection string of `Key=Value;` pairs")
    if not keys & {"accountname", "queueendpoint", "tableendpoint", "usedevelopmentstorage"}:
        raise SettingsError(f"{name} names neither an AccountName nor a QueueEndpoint")
    from azure.storage.queue import QueueClient  # the SDK's own parser; builds, never connects

    try:
        QueueClient.from_connection_string(value, DEFAULT_QUEUE_NAME)
    except ValueError as error:
        # The string holds a key: never echo it, nor an SDK message that quotes any of it.
        reason = str(error)
        values = (part.partition("=")[2].strip() for part in parts)
        if any(len(secret) > 3 and secret in reason for secret in values):
            reason = "the Azure SDK cannot build a client from it"
        raise SettingsError(f"{name} is not a usable connection string: {reason}") from None


def _check_queue_name(value: str, name: str) -> None:
    """Fail at start on a queue name Azure would refuse, for the queue or its poison queue."""
    if not 3 <= len(value) <= MAX_QUEUE_NAME_CHARS or not _QUEUE_NAME.fullmatch(value):
        raise SettingsError(
            f"{name} must be 3-{MAX_QUEUE_NAME_CHARS} lowercase letters, digits and single "
            f"hyphens, starting and ending with a letter or digit (`<name>{POISON_SUFFIX}` is "
            f"the poison queue), got {value!r}"
        )


def load_storage_settings(env: Mapping[str, str], prefix: str = "") -> StorageSettings:
    """Queue location; a connection string wins over an account name."""
    connection_string = lookup(env, "AZURE_STORAGE_CONNECTION_STRING", prefix)
    if connection_string is not None:
        _check_connection_string(connection_string, f"{prefix}AZURE_STORAGE_CONNECTION_STRING")
    account_name = lookup(env, "AZURE_STORAGE_ACCOUNT_NAME", prefix)
    if connection_string is None and account_name is None:
        raise SettingsError(
            f"set {prefix}AZURE_STORAGE_CONNECTION_STRING (Azurite, account keys) or "
            f"{prefix}AZURE_STORAGE_ACCOUNT_NAME (managed identity via DefaultAzureCredential)"
        )
    queue_name = lookup(env, "AZURE_STORAGE_QUEUE_NAME", prefix) or DEFAULT_QUEUE_NAME
    _check_queue_name(queue_name, f"{prefix}AZURE_STORAGE_QUEUE_NAME")
    return StorageSettings(connection_string, account_name, queue_name)


def load_frontend_settings(env: Mapping[str, str]) -> FrontendSettings:
    """Frontend settings; refuses to build without a webhook secret."""
    raw_secrets = env.get("GITHUB_WEBHOOK_SECRET", "")
    secrets = tuple(secret.strip() for secret in raw_secrets.split(",") if secret.strip())
    if not secrets:
        raise SettingsError(
            "GITHUB_WEBHOOK_SECRET is not set: set it to the secret configured on the GitHub "
            "webhook (several secrets, comma-separated, are all accepted during a rotation)"
        )
    return FrontendSettings(
        host=lookup(env, "HOST", "") or "0.0.0.0",
        port=integer(env, "PORT", "", 8080, 1, MAX_PORT),
        webhook_secrets=secrets,
        storage=load_storage_settings(env),
        packing=flag(env, "FRONTEND_PACKING", "", True),
    )


def telemetry_file(env: Mapping[str, str]) -> Path:
    """The local sink's file: `BACKEND_TELEMETRY_FILE`, else `TELEMETRY_FILE`, else `var/`."""
    return Path(lookup(env, "TELEMETRY_FILE", BACKEND_PREFIX) or DEFAULT_TELEMETRY_FILE)


def visibility_timeout_s(env: Mapping[str, str]) -> int:
    """How long a received message stays hidden: 1 s to Azure's 7-day maximum, 300 by default."""
    return integer(
        env,
        "VISIBILITY_TIMEOUT_SECONDS",
        BACKEND_PREFIX,
        DEFAULT_VISIBILITY_TIMEOUT_S,
        1,
        MAX_VISIBILITY_TIMEOUT_S,
    )


def load_backend_settings(env: Mapping[str, str]) -> BackendSettings:
    """Backend settings: each `BACKEND_`-prefixed name wins over the unprefixed one."""
    prefix = BACKEND_PREFIX
    return BackendSettings(
        storage=load_storage_settings(env, prefix),
        appinsights_connection_string=lookup(env, "APPLICATIONINSIGHTS_CONNECTION_STRING", prefix),
        poll_interval_s=number(env, "POLL_INTERVAL_SECONDS", prefix, 5.0, 0.0, MAX_POLL_INTERVAL_S),
        max_messages_per_batch=min(integer(env, "MAX_MESSAGES_PER_BATCH", prefix, 32, 1), 32),
        visibility_timeout_s=visibility_timeout_s(env),
        worker_processes=integer(env, "WORKER_PROCESSES", prefix, os.cpu_count() or 1, 1),
        max_dequeue_count=integer(env, "MAX_DEQUEUE_COUNT", prefix, 5, 1),
        telemetry_file=telemetry_file(env),
    )
