"""The settings layer of every service and tool: the environment over `.env`, typed by environs.

A service reads its settings once, at start, from one mapping: the process environment over the
values of `.env` (python-dotenv parses it), or a dict in tests. `EnvReader` types each value with
environs (marshmallow fields and validators underneath), reads a service prefix's name before the
plain one, and turns every refusal into a `SettingsError` naming the variable. The services' own
settings live beside them (`frontend/settings.py`, `backend/settings.py`); here is what both
read: the storage account and queue.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from dotenv import dotenv_values
from environs import Env, EnvValidationError
from marshmallow import ValidationError, fields, validate

DEFAULT_QUEUE_NAME = "github-webhook-events"
POISON_SUFFIX = "-poison"
# Azure queue names: 3-63 lowercase letters, digits and single inner hyphens; the poison queue
# `<name>-poison` must obey the same rule, so the name itself may have at most 56 characters.
# https://learn.microsoft.com/en-us/rest/api/storageservices/naming-queues-and-metadata
_QUEUE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_QUEUE_NAME_CHARS = 63 - len(POISON_SUFFIX)
# The backend reads `BACKEND_<NAME>` before `<NAME>`, so one `.env` serves both services.
BACKEND_PREFIX = "BACKEND_"
# sysexits.h EX_CONFIG: both services exit with it when a setting stops them at start; a
# supervisor or orchestrator restarting them cannot fix it.
EXIT_CONFIG = 78


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message says what to set."""


def refuse_to_start(service: str, error: SettingsError) -> NoReturn:
    """Stop a service at start over a bad setting: one line on stderr, exit status 78."""
    print(f"github-telemetry {service} cannot start: {error}", file=sys.stderr, flush=True)
    sys.exit(EXIT_CONFIG)


def read_dotenv(path: Path) -> dict[str, str]:
    """The `KEY=VALUE` pairs of a `.env` file, as python-dotenv reads them."""
    if not path.is_file():
        return {}
    # No `${VAR}` expansion: a secret or connection string is taken exactly as written.
    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {key: value for key, value in values.items() if value is not None}


def environment(dotenv: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over the values of `.env` (the real environment wins)."""
    merged = read_dotenv(dotenv) if dotenv is not None else {}
    merged.update(os.environ)
    return merged


class _Number(fields.Float):
    """A finite number; `nan` and `inf` are refused like any other typo."""

    default_error_messages = {"invalid": "must be a number", "special": "must be a finite number"}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, **kwargs)


class _Flag(fields.Boolean):
    """True or false in the spellings marshmallow knows (`true`, `yes`, `on`, `1`, ...)."""

    default_error_messages = {"invalid": "must be true or false"}


class _MappingEnv(Env):
    """environs' reader over a given mapping rather than the process environment."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(eager=True)
        self._source = values
        self.add_parser_from_field("number", _Number)
        self.add_parser_from_field("flag", _Flag)
        self.add_parser_from_field("whole", fields.Integer)

    def _get_value(self, env_key: str, default: Any) -> Any:
        # The hook environs' own FileAwareEnv overrides to change where values come from; the
        # loaders take a mapping so a service, a tool building a child's environment and a test
        # all read settings the same way.
        return self._source.get(env_key, default)


def _first_message(error: EnvValidationError) -> str:
    messages = error.error_messages
    return str(messages[0] if isinstance(messages, list) else messages)


class EnvReader:
    """Typed reads of one service's settings: `prefix + NAME` first, then `NAME`.

    Values are stripped and an empty value counts as unset. Errors name the variable the
    operator actually set (`BACKEND_X` or `X`), and every name asked for is remembered in
    `names` so that a service can warn about near misses of them.
    """

    def __init__(self, env: Mapping[str, str], prefix: str = "") -> None:
        self.prefix = prefix
        self.names: set[str] = set()
        self._values = {key: value.strip() for key, value in env.items() if value.strip()}
        self._env = _MappingEnv(self._values)

    def _keys(self, name: str) -> tuple[str, ...]:
        return (f"{self.prefix}{name}", name) if self.prefix else (name,)

    def name(self, name: str) -> str:
        """The variable's name as messages give it: the one that is set, else the plain name."""
        return next((key for key in self._keys(name) if key in self._values), name)

    def _parse(self, name: str, parse: Callable[[str], Any], show_value: bool = False) -> Any:
        """`parse(key)` of the variable that is set, or None; a refusal names the variable."""
        self.names.add(name)
        key = next((key for key in self._keys(name) if key in self._values), None)
        if key is None:
            return None
        try:
            return parse(key)
        except EnvValidationError as error:
            shown = f", got {self._values[key]!r}" if show_value else ""
            raise SettingsError(f"{key} {_first_message(error)}{shown}") from None

    def text(self, name: str, check: Callable[[str], None] | None = None) -> str | None:
        """A string, or None when unset; `check` raises ValidationError saying what is wrong."""
        value = self._parse(name, lambda key: self._env.str(key, validate=check))
        return None if value is None else str(value)

    def texts(self, name: str) -> tuple[str, ...]:
        """The non-empty items of a comma-separated list."""
        items = self._parse(name, lambda key: self._env.list(key, subcast=str)) or []
        return tuple(item.strip() for item in items if item.strip())

    def path(self, name: str, default: Path) -> Path:
        """A filesystem path."""
        value = self._parse(name, lambda key: self._env.path(key))
        return default if value is None else Path(value)

    def flag(self, name: str, default: bool) -> bool:
        """True or false."""
        value = self._parse(name, lambda key: self._env.flag(key), show_value=True)
        return default if value is None else bool(value)

    def number(self, name: str, default: float, minimum: float, maximum: float = math.inf) -> float:
        """A finite number within [minimum, maximum]."""
        bounds = [validate.Range(min=minimum, error="must be at least {min:g}")]
        if maximum < math.inf:
            bounds.append(validate.Range(max=maximum, error="must be at most {max:g}"))
        value = self._parse(
            name, lambda key: self._env.number(key, validate=bounds), show_value=True
        )
        return default if value is None else float(value)

    def integer(self, name: str, default: int, minimum: int, maximum: float = math.inf) -> int:
        """A whole number within [minimum, maximum] (`1e3` and `8.0` are whole numbers too)."""
        value = self.number(name, default, minimum, maximum)
        if value != int(value):
            raise SettingsError(f"{self.name(name)} must be a whole number, got {value:g}")
        return int(value)

    def count(self, name: str, default: int, maximum: int) -> int:
        """A whole number from 1 to `maximum`, written as digits."""
        message = f"must be a whole number from 1 to {maximum}"
        value = self._parse(
            name,
            lambda key: self._env.whole(
                key,
                validate=validate.Range(min=1, max=maximum, error=message),
                error_messages={"invalid": message, "too_large": message},
            ),
            show_value=True,
        )
        return default if value is None else int(value)


@dataclass(frozen=True)
class StorageSettings:
    """Where the queue lives: a connection string (Azurite, keys) or an account name (Entra ID).

    With an account name, `queue_endpoint` and `table_endpoint` are the services' full URLs when
    they are not the public cloud's (`https://<account>.queue.core.windows.net`, `.table.`).
    """

    connection_string: str | None
    account_name: str | None
    queue_name: str
    queue_endpoint: str | None = None
    table_endpoint: str | None = None

    @property
    def poison_queue_name(self) -> str:
        """The dead-letter queue beside the main one."""
        return f"{self.queue_name}{POISON_SUFFIX}"


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return bool(text)


def _check_connection_string(value: str) -> None:
    """Fail at start, not on the first request, when a connection string cannot be one."""
    parts = [part for part in value.split(";") if part.strip()]
    keys = {part.partition("=")[0].strip().lower() for part in parts}
    if not parts or any("=" not in part for part in parts):
        raise ValidationError("is not a connection string of `Key=Value;` pairs")
    if not keys & {"accountname", "queueendpoint", "tableendpoint", "usedevelopmentstorage"}:
        raise ValidationError("names neither an AccountName nor a QueueEndpoint")
    for part in parts:
        key, _, secret = part.partition("=")
        if key.strip().lower() == "accountkey" and not _is_base64(secret.strip()):
            # The SDK would accept it and fail on every request with "Incorrect padding".
            raise ValidationError("has an AccountKey that is not base64 (copy the key again)")
    from azure.storage.queue import QueueClient  # the SDK's own parser; builds, never connects

    try:
        QueueClient.from_connection_string(value, DEFAULT_QUEUE_NAME)
    except ValueError as error:
        # The string holds a key: never echo it, nor an SDK message that quotes any of it.
        reason = str(error)
        values = (part.partition("=")[2].strip() for part in parts)
        if any(len(secret) > 3 and secret in reason for secret in values):
            reason = "the Azure SDK cannot build a client from it"
        raise ValidationError(f"is not a usable connection string: {reason}") from None


def _check_queue_name(value: str) -> None:
    """Fail at start on a queue name Azure would refuse, for the queue or its poison queue."""
    if not 3 <= len(value) <= MAX_QUEUE_NAME_CHARS or not _QUEUE_NAME.fullmatch(value):
        raise ValidationError(
            f"must be 3-{MAX_QUEUE_NAME_CHARS} lowercase letters, digits and single hyphens, "
            f"starting and ending with a letter or digit (`<name>{POISON_SUFFIX}` is the poison "
            f"queue), got {value!r}"
        )


# What read_storage reads, for warnings about near misses even when it stops half-way.
STORAGE_NAMES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_QUEUE_NAME",
    "AZURE_STORAGE_QUEUE_ENDPOINT",
    "AZURE_STORAGE_TABLE_ENDPOINT",
)


def _check_endpoint(value: str) -> None:
    """Fail at start on a service URL the SDK could not reach."""
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in {"http", "https"} or not rest.strip("/"):
        raise ValidationError(
            f"must be a full URL such as https://<account>.queue.core.windows.net, got {value!r}"
        )


def read_storage(reader: EnvReader) -> StorageSettings:
    """Queue location; a connection string wins over an account name."""
    connection_string = reader.text("AZURE_STORAGE_CONNECTION_STRING", _check_connection_string)
    account_name = reader.text("AZURE_STORAGE_ACCOUNT_NAME")
    if connection_string is None and account_name is None:
        also = f" ({reader.prefix}<NAME> is read first)" if reader.prefix else ""
        raise SettingsError(
            "set AZURE_STORAGE_CONNECTION_STRING (Azurite, account keys) or "
            f"AZURE_STORAGE_ACCOUNT_NAME (managed identity via DefaultAzureCredential){also}"
        )
    queue_name = reader.text("AZURE_STORAGE_QUEUE_NAME", _check_queue_name) or DEFAULT_QUEUE_NAME
    return StorageSettings(
        connection_string,
        account_name,
        queue_name,
        queue_endpoint=reader.text("AZURE_STORAGE_QUEUE_ENDPOINT", _check_endpoint),
        table_endpoint=reader.text("AZURE_STORAGE_TABLE_ENDPOINT", _check_endpoint),
    )


def load_storage_settings(env: Mapping[str, str], prefix: str = "") -> StorageSettings:
    """Queue location from `env`, reading `prefix`ed names first."""
    return read_storage(EnvReader(env, prefix))


def edit_distance(first: str, second: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions (the stdlib has none)."""
    previous = list(range(len(second) + 1))
    for row, left in enumerate(first, start=1):
        current = [row]
        for column, right in enumerate(second, start=1):
            current.append(
                min(previous[column] + 1, current[-1] + 1, previous[column - 1] + (left != right))
            )
        previous = current
    return previous[-1]


def _is_near(key: str, name: str) -> bool:
    # One slip in a short name, two in a long one: `HOST` and `HOME` stay apart, while
    # `APPLICATIONINSIGHT_CONNECTION_STRING` still finds its missing S.
    limit = 1 if len(name) < 8 else 2
    return abs(len(key) - len(name)) <= limit and edit_distance(key, name) <= limit


def spellings(names: Iterable[str], prefix: str = "") -> set[str]:
    """Every variable an EnvReader with `prefix` consults for `names`: `X` and `<prefix>X`."""
    return {spelling for name in names for spelling in {name, f"{prefix}{name}"}}


def near_misses(
    env: Mapping[str, str], read: Iterable[str], owned: Iterable[str] = ()
) -> list[str]:
    """Warnings about names in `env` a service does not read but probably meant to.

    `read` are the exact variables the service reads. A name is suspect when it starts with a
    prefix the service owns (`BACKEND_`) or lies within a small edit distance of a name the
    service reads; each warning names the likely intended one.
    """
    read = set(read)
    owned = tuple(owned)
    warnings = []
    for key in sorted(env):
        if key in read:
            continue
        near = sorted((edit_distance(key, name), name) for name in read if _is_near(key, name))
        if near:
            warnings.append(f"{key} is set but not read: did you mean {near[0][1]}?")
        elif owned and key.startswith(owned):
            # Farther than a typo: a shortened name, or difflib's similarity for a reordered one.
            longer = sorted((name for name in read if name.startswith(key)), key=len)
            similar = longer or difflib.get_close_matches(key, sorted(read), n=1, cutoff=0.7)
            hint = f" (the closest is {similar[0]})" if similar else ""
            warnings.append(f"{key} is set but is not a setting{hint}")
    return warnings


def container_hint(env: Mapping[str, str], root: Path = Path("/")) -> str | None:
    """What shows this process runs in a container, or None."""
    for name in ("KUBERNETES_SERVICE_HOST", "CONTAINER_APP_NAME"):
        if env.get(name):
            return f"{name} is set"
    for marker in (".dockerenv", "run/.containerenv"):
        if (root / marker).exists():
            return f"/{marker} exists"
    return None
