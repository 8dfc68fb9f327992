"""Settings: defaults, BACKEND_ precedence, secrets, `.env` parsing and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import BackendSettings, LedgerSettings, load_backend_settings
from common.settings import (
    DEFAULT_QUEUE_NAME,
    SettingsError,
    StorageSettings,
    environment,
    load_storage_settings,
    read_dotenv,
)
from frontend.settings import FrontendSettings, load_frontend_settings

AZURITE = "UseDevelopmentStorage=true"


def test_frontend_defaults() -> None:
    settings = load_frontend_settings(
        {"GITHUB_WEBHOOK_SECRET": "s3cret", "AZURE_STORAGE_CONNECTION_STRING": AZURITE}
    )

    assert settings == FrontendSettings(
        host="0.0.0.0",
        port=8080,
        webhook_secrets=("s3cret",),
        storage=StorageSettings(AZURITE, None, DEFAULT_QUEUE_NAME),
    )


@pytest.mark.parametrize(("raw", "packing"), [("false", False), ("0", False), ("true", True)])
def test_frontend_packing_can_be_turned_off(raw: str, packing: bool) -> None:
    env = {
        "GITHUB_WEBHOOK_SECRET": "s",
        "AZURE_STORAGE_CONNECTION_STRING": AZURITE,
        "FRONTEND_PACKING": raw,
    }

    assert load_frontend_settings(env).packing is packing


def test_frontend_packing_must_be_true_or_false() -> None:
    env = {
        "GITHUB_WEBHOOK_SECRET": "s",
        "AZURE_STORAGE_CONNECTION_STRING": AZURITE,
        "FRONTEND_PACKING": "sometimes",
    }

    with pytest.raises(SettingsError, match="FRONTEND_PACKING must be true or false"):
        load_frontend_settings(env)


def test_frontend_host_port_and_queue_name() -> None:
    settings = load_frontend_settings(
        {
            "GITHUB_WEBHOOK_SECRET": "s",
            "AZURE_STORAGE_ACCOUNT_NAME": "telemetryacct",
            "AZURE_STORAGE_QUEUE_NAME": "hooks",
            "HOST": "127.0.0.1",
            "PORT": "9000",
        }
    )

    assert (settings.host, settings.port) == ("127.0.0.1", 9000)
    assert settings.storage == StorageSettings(None, "telemetryacct", "hooks")
    assert settings.storage.poison_queue_name == "hooks-poison"


@pytest.mark.parametrize(
    ("raw", "secrets"),
    [
        ("one", ("one",)),
        ("new,old", ("new", "old")),
        (" new , old ,", ("new", "old")),
        ("a,,b", ("a", "b")),
    ],
)
def test_comma_separated_secrets(raw: str, secrets: tuple[str, ...]) -> None:
    settings = load_frontend_settings(
        {"GITHUB_WEBHOOK_SECRET": raw, "AZURE_STORAGE_CONNECTION_STRING": AZURITE}
    )

    assert settings.webhook_secrets == secrets


@pytest.mark.parametrize("raw", [None, "", "  ", ",", " , "])
def test_no_secret_is_refused_with_what_to_set(raw: str | None) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": AZURITE}
    if raw is not None:
        env["GITHUB_WEBHOOK_SECRET"] = raw

    with pytest.raises(SettingsError) as raised:
        load_frontend_settings(env)

    assert str(raised.value) == (
        "GITHUB_WEBHOOK_SECRET is not set: set it to the secret configured on the GitHub "
        "webhook (several secrets, comma-separated, are all accepted during a rotation)"
    )


def test_no_storage_is_refused_with_both_choices() -> None:
    with pytest.raises(SettingsError) as raised:
        load_storage_settings({})

    assert str(raised.value) == (
        "set AZURE_STORAGE_CONNECTION_STRING (Azurite, account keys) or "
        "AZURE_STORAGE_ACCOUNT_NAME (managed identity via DefaultAzureCredential)"
    )


def test_a_connection_string_wins_over_an_account_name() -> None:
    storage = load_storage_settings(
        {"AZURE_STORAGE_CONNECTION_STRING": AZURITE, "AZURE_STORAGE_ACCOUNT_NAME": "acct"}
    )

    assert (storage.connection_string, storage.account_name) == (AZURITE, "acct")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "http"}, "PORT must be a number, got 'http'"),
        ({"PORT": "0"}, "PORT must be at least 1, got '0'"),
        ({"PORT": "80.5"}, "PORT must be a whole number, got 80.5"),
    ],
)
def test_malformed_frontend_numbers_say_which_and_what(env: dict[str, str], message: str) -> None:
    env.update(GITHUB_WEBHOOK_SECRET="s", AZURE_STORAGE_CONNECTION_STRING=AZURITE)

    with pytest.raises(SettingsError) as raised:
        load_frontend_settings(env)

    assert str(raised.value) == message


def test_backend_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 6)

    settings = load_backend_settings({"AZURE_STORAGE_CONNECTION_STRING": AZURITE})

    assert settings == BackendSettings(
        storage=StorageSettings(AZURITE, None, DEFAULT_QUEUE_NAME),
        appinsights_connection_string=None,
        poll_interval_s=5.0,
        max_messages_per_batch=32,
        visibility_timeout_s=300,
        worker_processes=6,
        max_dequeue_count=5,
        telemetry_file=Path("var") / "telemetry.jsonl",
        ledger=LedgerSettings(),
    )


def test_backend_prefixed_names_win_over_unprefixed_ones() -> None:
    settings = load_backend_settings(
        {
            "AZURE_STORAGE_CONNECTION_STRING": "AccountName=shared;AccountKey=c2hhcmVk",
            "BACKEND_AZURE_STORAGE_CONNECTION_STRING": "AccountName=backend;AccountKey=a2V5",
            "AZURE_STORAGE_QUEUE_NAME": "shared-queue",
            "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=shared",
            "BACKEND_APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=backend",
            "POLL_INTERVAL_SECONDS": "9",
            "BACKEND_POLL_INTERVAL_SECONDS": "0.5",
            "WORKER_PROCESSES": "3",
            "BACKEND_MAX_DEQUEUE_COUNT": "7",
            "BACKEND_VISIBILITY_TIMEOUT_SECONDS": "",
            "BACKEND_TELEMETRY_FILE": "out/t.jsonl",
        }
    )

    assert settings.storage == StorageSettings(
        "AccountName=backend;AccountKey=a2V5", None, "shared-queue"
    )
    assert settings.appinsights_connection_string == "InstrumentationKey=backend"
    assert (settings.poll_interval_s, settings.worker_processes) == (0.5, 3)
    assert (settings.max_dequeue_count, settings.visibility_timeout_s) == (7, 300)
    assert settings.telemetry_file == Path("out/t.jsonl")


def test_backend_batch_size_is_capped_at_the_queue_maximum() -> None:
    settings = load_backend_settings(
        {"AZURE_STORAGE_CONNECTION_STRING": AZURITE, "MAX_MESSAGES_PER_BATCH": "100"}
    )

    assert settings.max_messages_per_batch == 32


def test_backend_errors_name_the_variable_the_user_set() -> None:
    with pytest.raises(SettingsError) as raised:
        load_backend_settings({})
    assert str(raised.value) == (
        "set AZURE_STORAGE_CONNECTION_STRING (Azurite, account keys) or "
        "AZURE_STORAGE_ACCOUNT_NAME (managed identity via DefaultAzureCredential) "
        "(BACKEND_<NAME> is read first)"
    )

    for name in ("WORKER_PROCESSES", "BACKEND_WORKER_PROCESSES"):
        with pytest.raises(SettingsError) as raised:
            load_backend_settings({"AZURE_STORAGE_CONNECTION_STRING": AZURITE, name: "-1"})
        assert str(raised.value) == f"{name} must be at least 1, got '-1'"


def test_read_dotenv_parses_comments_quotes_and_export(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# local settings\n"
        "\n"
        "GITHUB_WEBHOOK_SECRET='new,old'\n"
        'export AZURE_STORAGE_QUEUE_NAME="hooks"\n'
        "  PORT = 9000  \n"
        "EQUALS=a=b\n"
        "NOT A SETTING\n"
        "EMPTY=\n",
        encoding="utf-8",
    )

    assert read_dotenv(dotenv) == {
        "GITHUB_WEBHOOK_SECRET": "new,old",
        "AZURE_STORAGE_QUEUE_NAME": "hooks",
        "PORT": "9000",
        "EQUALS": "a=b",
        "EMPTY": "",
    }


def test_read_dotenv_without_a_file_is_empty(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / ".env") == {}


def test_the_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9000\nHOST=10.0.0.1\n", encoding="utf-8")
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.delenv("HOST", raising=False)

    merged = environment(dotenv)

    assert (merged["PORT"], merged["HOST"]) == ("9100", "10.0.0.1")


def test_environment_without_dotenv_is_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "from-env")

    assert environment(None)["GITHUB_WEBHOOK_SECRET"] == "from-env"


@pytest.mark.parametrize(
    "value",
    ["not a connection string", "AccountName", "Foo=bar;Baz=qux", ";;"],
)
def test_a_malformed_connection_string_is_refused_at_start(value: str) -> None:
    with pytest.raises(SettingsError, match="AZURE_STORAGE_CONNECTION_STRING"):
        load_storage_settings({"AZURE_STORAGE_CONNECTION_STRING": value})
