"""Settings of the GitHub commands (`recover`, `backfill`): credentials, API URL and pacing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from marshmallow import ValidationError

from common.settings import EnvReader, SettingsError

DEFAULT_API_URL = "https://api.github.com"
# GitHub asks for at least a second between mutating requests (its secondary rate limits).
# https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
DEFAULT_REDELIVERY_INTERVAL_S = 1.0
# Calls kept in reserve: below this many left in the hour, a command waits for the reset.
DEFAULT_RATE_LIMIT_RESERVE = 50


@dataclass(frozen=True)
class GitHubSettings:
    """How the commands reach GitHub: a token, or a GitHub App's id and private key."""

    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    app_id: str | None = None
    private_key: str | None = field(default=None, repr=False)
    redelivery_interval_s: float = DEFAULT_REDELIVERY_INTERVAL_S
    rate_limit_reserve: int = DEFAULT_RATE_LIMIT_RESERVE

    @property
    def is_app(self) -> bool:
        """True when the commands authenticate as a GitHub App rather than with a token."""
        return self.token is None


def _check_url(value: str) -> None:
    if not value.startswith(("https://", "http://")):
        raise ValidationError(f"must be an http(s) URL, got {value!r}")


def _private_key(reader: EnvReader) -> str:
    """The App's PEM private key, read from the file the settings name."""
    name = reader.name("GITHUB_APP_PRIVATE_KEY_FILE")
    path = reader.text("GITHUB_APP_PRIVATE_KEY_FILE")
    if path is None:
        raise SettingsError(f"GITHUB_APP_ID is set: set {name} to the App's private key file")
    try:
        key = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise SettingsError(f"{name}: cannot read {path}: {reason}") from None
    if "PRIVATE KEY-----" not in key:
        raise SettingsError(f"{name}: {path} is not a PEM private key")
    return key


def load_github_settings(env: Mapping[str, str]) -> GitHubSettings:
    """Read the GitHub settings; a token wins over an App.

    Raises:
        SettingsError: no credential, an unreadable key file, or a malformed value.
    """
    reader = EnvReader(env)
    api_url = reader.text("GITHUB_API_URL", _check_url) or DEFAULT_API_URL
    interval_s = reader.number(
        "GITHUB_REDELIVERY_INTERVAL_SECONDS", DEFAULT_REDELIVERY_INTERVAL_S, 0.0, 60.0
    )
    reserve = reader.integer("GITHUB_RATE_LIMIT_RESERVE", DEFAULT_RATE_LIMIT_RESERVE, 0)
    token = reader.text("GITHUB_TOKEN")
    app_id = reader.text("GITHUB_APP_ID")
    if token is None and app_id is None:
        raise SettingsError(
            "no GitHub credential: set GITHUB_TOKEN, or GITHUB_APP_ID and "
            "GITHUB_APP_PRIVATE_KEY_FILE"
        )
    return GitHubSettings(
        api_url=api_url.rstrip("/"),
        token=token,
        app_id=None if token is not None else app_id,
        private_key=None if token is not None else _private_key(reader),
        redelivery_interval_s=interval_s,
        rate_limit_reserve=reserve,
    )
