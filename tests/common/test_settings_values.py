"""Numbers and `.env` values: non-finite and out-of-range numbers are refused, comments dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import load_backend_settings
from common.settings import SettingsError, read_dotenv
from frontend.settings import load_frontend_settings

FRONTEND = {
    "GITHUB_WEBHOOK_SECRET": "s",
    "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("nan", "PORT must be a finite number, got 'nan'"),
        ("inf", "PORT must be a finite number, got 'inf'"),
        ("-inf", "PORT must be a finite number, got '-inf'"),
        ("70000", "PORT must be at most 65535, got '70000'"),
        ("0", "PORT must be at least 1, got '0'"),
        ("80.5", "PORT must be a whole number, got 80.5"),
    ],
)
def test_a_port_that_cannot_be_one_is_refused(raw: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_frontend_settings({**FRONTEND, "PORT": raw})

    assert str(raised.value) == message


def test_the_highest_port_is_accepted() -> None:
    assert load_frontend_settings({**FRONTEND, "PORT": "65535"}).port == 65535


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("POLL_INTERVAL_SECONDS", "nan", "must be a finite number, got 'nan'"),
        ("POLL_INTERVAL_SECONDS", "inf", "must be a finite number, got 'inf'"),
        ("POLL_INTERVAL_SECONDS", "3601", "must be at most 3600, got '3601'"),
        ("VISIBILITY_TIMEOUT_SECONDS", "nan", "must be a finite number, got 'nan'"),
        ("VISIBILITY_TIMEOUT_SECONDS", "604801", "must be at most 604800, got '604801'"),
        ("WORKER_PROCESSES", "1e400", "must be a finite number, got '1e400'"),
    ],
)
def test_backend_numbers_must_be_finite_and_in_range(name: str, raw: str, message: str) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", name: raw}

    with pytest.raises(SettingsError) as raised:
        load_backend_settings(env)

    assert str(raised.value) == f"{name} {message}"


def test_read_dotenv_drops_inline_comments(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        'GITHUB_WEBHOOK_SECRET="abc" # rotated 2024\n'
        "PORT=8080 # http\n"
        "QUOTED_HASH='a # b'\n"
        "HASH_IN_VALUE=abc#def\n"
        "SINGLE='x'  #note\n"
        "ONLY_COMMENT= # nothing\n",
        encoding="utf-8",
    )

    assert read_dotenv(dotenv) == {
        "GITHUB_WEBHOOK_SECRET": "abc",
        "PORT": "8080",
        "QUOTED_HASH": "a # b",
        "HASH_IN_VALUE": "abc#def",
        "SINGLE": "x",
        "ONLY_COMMENT": "",
    }


def test_read_dotenv_skips_a_line_it_cannot_parse_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text('BEFORE=1\nODD="a"b"\nAFTER=2\n', encoding="utf-8")

    assert read_dotenv(dotenv) == {"BEFORE": "1", "AFTER": "2"}
    assert "line 2" in caplog.text


def test_read_dotenv_keeps_dollar_signs_as_written(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("HOME_COPY=${HOME}\nSECRET=pa$$word\n", encoding="utf-8")

    assert read_dotenv(dotenv) == {"HOME_COPY": "${HOME}", "SECRET": "pa$$word"}
