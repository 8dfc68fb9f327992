"""Logging of both services: JSON lines (containers) or readable text (a terminal).

`LOG_FORMAT` is `json` (the default) or `text`; `LOG_LEVEL` is a standard level name. Handlers
are configured only in entry points.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError

from common.settings import EnvReader

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, service, message and `extra=` fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One readable line: local time, level, service and message (the message names its subject)."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)-7s {service:<8} %(message)s", "%H:%M:%S")


@dataclass(frozen=True)
class LogSettings:
    """How the services log."""

    format: str = "json"
    level: str = "INFO"


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(value: str) -> None:
        if value.lower() not in {choice.lower() for choice in choices}:
            raise ValidationError(f"must be one of {', '.join(choices)}, got {value!r}")

    return check


def load_log_settings(env: Mapping[str, str]) -> LogSettings:
    """`LOG_FORMAT` and `LOG_LEVEL` from `env`.

    Raises:
        SettingsError: a value is not one of the known formats or levels.
    """
    reader = EnvReader(env)
    log_format = reader.text("LOG_FORMAT", _one_of(LOG_FORMATS)) or "json"
    level = reader.text("LOG_LEVEL", _one_of(LOG_LEVELS)) or "INFO"
    return LogSettings(log_format.lower(), level.upper())


def formatter(service: str, settings: LogSettings) -> logging.Formatter:
    """The formatter `settings` ask for."""
    if settings.format == "text":
        return TextFormatter(service)
    return JsonFormatter(service)


def configure_logging(service: str, settings: LogSettings | None = None) -> None:
    """Send every log record to stderr in the chosen format; quiet the Azure SDK's HTTP logging."""
    settings = settings or LogSettings()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(service, settings))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # The SDK logs request headers at INFO; keep it to warnings so nothing sensitive leaks.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    # azure.identity warns in a dozen lines per failed token; the storage error that follows
    # names the credentials it tried in one line (common.azure_clients.describe_error).
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
