"""Storage settings that look right but cannot work are refused at start."""

from __future__ import annotations

import pytest

from backend.settings import load_backend_settings
from common.settings import SettingsError, load_storage_settings
from tools.azurite import ACCOUNT_KEY

KEYED = f"AccountName=telemetry;AccountKey={ACCOUNT_KEY}"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (
            "AccountName=foo",
            "You need to provide either a SAS token or an account shared key to authenticate.",
        ),
        ("UseDevelopmentStorage=false", "Connection string missing required connection details."),
        (f"{KEYED};QueueEndpoint=http://[::1", "Invalid IPv6 URL"),
    ],
)
def test_a_connection_string_the_sdk_cannot_use_is_refused_at_start(
    value: str, reason: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_storage_settings({"AZURE_STORAGE_CONNECTION_STRING": value})

    assert str(raised.value) == (
        f"AZURE_STORAGE_CONNECTION_STRING is not a usable connection string: {reason}"
    )
    assert ACCOUNT_KEY not in str(raised.value)


@pytest.mark.parametrize(
    "value",
    ["UseDevelopmentStorage=true", KEYED, f"{KEYED};QueueEndpoint=http://127.0.0.1:10001/x"],
)
def test_a_usable_connection_string_is_kept(value: str) -> None:
    storage = load_storage_settings({"AZURE_STORAGE_CONNECTION_STRING": value})

    assert storage.connection_string == value


@pytest.mark.parametrize(
    "name",
    ["abc", "github-webhook-events", "a1-b2-c3", "q" * 56, "2024-hooks"],
)
def test_valid_queue_names_are_kept(name: str) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}

    storage = load_storage_settings({**env, "AZURE_STORAGE_QUEUE_NAME": name})

    assert (storage.queue_name, storage.poison_queue_name) == (name, f"{name}-poison")


@pytest.mark.parametrize(
    "name",
    ["ab", "q" * 57, "Hooks", "hooks_1", "-hooks", "hooks-", "ho--oks", "a b", "fö", "q/../x"],
)
def test_a_queue_name_azure_would_refuse_is_refused_at_start(name: str) -> None:
    env = {"BACKEND_AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}

    with pytest.raises(SettingsError) as raised:
        load_backend_settings({**env, "BACKEND_AZURE_STORAGE_QUEUE_NAME": name})

    assert str(raised.value) == (
        "BACKEND_AZURE_STORAGE_QUEUE_NAME must be 3-56 lowercase letters, digits and single "
        "hyphens, starting and ending with a letter or digit (`<name>-poison` is the poison "
        f"queue), got {name!r}"
    )
