"""LOG_FORMAT and LOG_LEVEL: JSON lines for containers, one readable line in a terminal."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

from common.logs import (
    JsonFormatter,
    LogSettings,
    TextFormatter,
    configure_logging,
    load_log_settings,
)
from common.settings import SettingsError


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _record() -> logging.LogRecord:
    return logging.LogRecord(
        "frontend.views",
        logging.INFO,
        __file__,
        1,
        "delivery %s %s %s: %s %d",
        ("d-1", "workflow_job", "completed", "queued", 202),
        None,
    )


def test_defaults_are_json_at_info_and_spellings_are_forgiven() -> None:
    assert load_log_settings({}) == LogSettings("json", "INFO")
    assert load_log_settings({"LOG_FORMAT": "TEXT", "LOG_LEVEL": "debug"}) == LogSettings(
        "text", "DEBUG"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOG_FORMAT": "yaml"}, "LOG_FORMAT must be one of json, text, got 'yaml'"),
        (
            {"LOG_LEVEL": "chatty"},
            "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'chatty'",
        ),
    ],
)
def test_unknown_values_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_log_settings(env)
    assert str(raised.value) == message


def test_text_is_one_readable_line_per_delivery() -> None:
    line = TextFormatter("frontend").format(_record())

    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO    frontend delivery d-1 workflow_job completed: queued 202", line
    )


def test_the_chosen_format_and_level_reach_the_root_logger(restore_logging: None) -> None:
    configure_logging("backend", LogSettings("text", "WARNING"))
    root = logging.getLogger()
    [handler] = root.handlers
    assert isinstance(handler.formatter, TextFormatter)
    assert root.level == logging.WARNING
    # azure-identity's many-line warnings give way to the one line of common.azure_clients
    assert logging.getLogger("azure.identity").level == logging.ERROR

    configure_logging("backend", LogSettings())
    [handler] = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert json.loads(handler.format(_record()))["service"] == "backend"
