"""The settings layer itself: the prefix fallback, typed reads, and one load of every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import LedgerSettings, load_backend_settings, telemetry_file
from common.settings import BACKEND_PREFIX, EnvReader, SettingsError
from frontend.settings import load_frontend_settings

AZURITE = "UseDevelopmentStorage=true"
FRONTEND = {"GITHUB_WEBHOOK_SECRET": "s", "AZURE_STORAGE_CONNECTION_STRING": AZURITE}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BACKEND_LEVEL": "backend", "LEVEL": "shared"}, "backend"),
        ({"LEVEL": "shared"}, "shared"),
        ({"BACKEND_LEVEL": "  ", "LEVEL": "shared"}, "shared"),
        ({"BACKEND_LEVEL": " padded "}, "padded"),
        ({"BACKEND_LEVEL": "", "LEVEL": ""}, None),
        ({}, None),
    ],
)
def test_the_prefixed_name_wins_and_an_empty_one_falls_back(
    env: dict[str, str], expected: str | None
) -> None:
    assert EnvReader(env, BACKEND_PREFIX).text("LEVEL") == expected


def test_without_a_prefix_only_the_plain_name_is_read() -> None:
    reader = EnvReader({"BACKEND_LEVEL": "backend"})

    assert reader.text("LEVEL") is None


@pytest.mark.parametrize("name", ["RATE", "BACKEND_RATE"])
def test_a_refused_value_is_named_as_the_user_set_it(name: str) -> None:
    with pytest.raises(SettingsError) as raised:
        EnvReader({name: "fast"}, BACKEND_PREFIX).number("RATE", 1.0, 0.0)

    assert str(raised.value) == f"{name} must be a number, got 'fast'"


def test_only_the_given_mapping_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # environs reads the process environment unless told otherwise: the reader tells it.
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("FRONTEND_PACKING", "maybe")

    settings = load_frontend_settings(FRONTEND)

    assert (settings.port, settings.packing) == (8080, True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("Yes", True), ("ON", True), ("1", True), ("off", False), ("0", False)],
)
def test_flags_take_the_usual_spellings(raw: str, expected: bool) -> None:
    assert EnvReader({"ENABLED": raw}).flag("ENABLED", not expected) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("8", 8), ("8.0", 8), ("1e3", 1000), (" 42 ", 42)],
)
def test_whole_numbers_may_be_written_as_numbers(raw: str, expected: int) -> None:
    assert EnvReader({"COUNT": raw}).integer("COUNT", 1, 1) == expected


def test_the_gunicorn_counts_are_frontend_settings() -> None:
    settings = load_frontend_settings({**FRONTEND, "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "4"})

    assert (settings.workers, settings.threads) == (3, 4)
    assert (load_frontend_settings(FRONTEND).workers, load_frontend_settings(FRONTEND).threads) == (
        2,
        8,
    )


def test_the_ledger_settings_are_read_with_the_backend_ones() -> None:
    settings = load_backend_settings(
        {
            "AZURE_STORAGE_CONNECTION_STRING": AZURITE,
            "BACKEND_VISIBILITY_TIMEOUT_SECONDS": "60",
            "LEDGER_TABLE_NAME": "sharedledger",
            "BACKEND_LEDGER_TABLE_NAME": "backendledger",
            "LEDGER_ENABLED": "false",
        }
    )

    assert settings.ledger == LedgerSettings(
        enabled=False,
        table_name="backendledger",
        lease_s=120,
        retention_h=168,
        purge_interval_s=3600,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BACKEND_LEDGER_TABLE_NAME": "has-dash"},
            "BACKEND_LEDGER_TABLE_NAME must be 3-63 letters or digits starting with a letter, "
            "got 'has-dash'",
        ),
        (
            {"VISIBILITY_TIMEOUT_SECONDS": "600", "LEDGER_LEASE_SECONDS": "599"},
            "LEDGER_LEASE_SECONDS (599) must be at least VISIBILITY_TIMEOUT_SECONDS (600)",
        ),
        ({"LEDGER_ENABLED": "maybe"}, "LEDGER_ENABLED must be true or false, got 'maybe'"),
        (
            {"LEDGER_RETENTION_HOURS": "24"},
            "LEDGER_RETENTION_HOURS must be at least 72, got '24'",
        ),
        (
            {"LEDGER_PURGE_INTERVAL_SECONDS": "90.5"},
            "LEDGER_PURGE_INTERVAL_SECONDS must be a whole number, got 90.5",
        ),
    ],
)
def test_a_bad_ledger_setting_stops_the_backend_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_backend_settings({"AZURE_STORAGE_CONNECTION_STRING": AZURITE, **env})

    assert str(raised.value) == message


def test_the_telemetry_file_prefers_the_backend_name() -> None:
    env = {"TELEMETRY_FILE": "shared.jsonl", "BACKEND_TELEMETRY_FILE": "backend.jsonl"}

    assert telemetry_file(env) == Path("backend.jsonl")
    assert telemetry_file({}) == Path("var") / "telemetry.jsonl"
