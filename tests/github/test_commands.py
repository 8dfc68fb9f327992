"""The commands' edges: credentials (token, App JWT, installation token), messages, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend import backfill, recover
from backend.github.client import GitHubError, Target
from backend.github.hooks import RestHook
from backend.github.settings import GitHubSettings, load_github_settings
from backend.process import EXIT_CONFIG
from common.settings import SettingsError
from tests.github.conftest import REPO, client
from tests.github.standin import INSTALLATION_ID, TOKEN, Running

RECOVER_ARGS = ["--repo", f"{REPO.owner}/{REPO.name}", "--hook-id", "1"]


def test_a_bad_token_exits_1_naming_the_variable_without_a_traceback(
    github: Running, storage_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**storage_env, "GITHUB_TOKEN": "ghp_wrong", "GITHUB_API_URL": github.url}

    code = recover.main(RECOVER_ARGS, env)

    err = capsys.readouterr().err
    assert code == 1
    assert "recover: GitHub refused the credential (401 Bad credentials): check GITHUB_TOKEN" in err
    assert "Traceback" not in err


def test_no_credential_exits_78_saying_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}
    code = backfill.main(["--repo", "o/n", "--since", "2024-01-01"], env)

    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert "set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE" in err


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"GITHUB_APP_ID": "1"}, "set GITHUB_APP_PRIVATE_KEY_FILE"),
        ({"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent.pem"}, "cannot read"),
        ({"GITHUB_TOKEN": "t", "GITHUB_API_URL": "api.github.com"}, "GITHUB_API_URL must be"),
        ({"GITHUB_TOKEN": "t", "GITHUB_REDELIVERY_INTERVAL_SECONDS": "-1"}, "at least 0"),
    ],
)
def test_bad_settings_name_the_variable(variables: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_github_settings(variables)


def test_a_key_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text("-----BEGIN RSA PRIVATE KEY-----\nnot base64\n-----END RSA PRIVATE KEY-----\n")
    settings = load_github_settings(
        {"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": str(path)}
    )

    with pytest.raises(GitHubError, match="does not hold a usable RSA private key"):
        client(settings, Target("app"))


def test_the_app_hook_is_read_with_the_app_jwt(github: Running, app_key_file: Path) -> None:
    github.state.deliveries.append(
        {"id": 1, "guid": "g", "delivered_at": "2099-01-01T00:00:00Z", "status_code": 200}
    )
    env = {"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": str(app_key_file)}
    settings = load_github_settings({**env, "GITHUB_API_URL": github.url})

    items = list(RestHook(client(settings, Target("app")), Target("app"), None).deliveries())

    assert [item["guid"] for item in items] == ["g"]
    assert github.state.app_jwt_seen == ["/app/hook/deliveries"]


def test_a_repository_is_read_with_the_app_installation_token(
    github: Running, app_key_file: Path
) -> None:
    env = {"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": str(app_key_file)}
    settings = load_github_settings({**env, "GITHUB_API_URL": github.url})

    api = client(settings, REPO)
    body = api.json(api.rest.repos.get, REPO.owner, REPO.name)

    assert body["full_name"] == f"{REPO.owner}/{REPO.name}"
    assert [p for _m, p in github.state.requests] == [
        f"/repos/{REPO.owner}/{REPO.name}/installation",
        f"/app/installations/{INSTALLATION_ID}/access_tokens",
        f"/repos/{REPO.owner}/{REPO.name}",
    ]


def test_the_app_hook_needs_an_app_not_a_token(github: Running) -> None:
    settings = GitHubSettings(api_url=github.url, token=TOKEN)

    with pytest.raises(GitHubError, match="--app reads the GitHub App's own hook"):
        client(settings, Target("app"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--repo", "o/n"],
        ["--org", "o"],
        ["--app", "--hook-id", "3"],
        ["--repo", "not-a-repo", "--hook-id", "3"],
    ],
)
def test_recover_refuses_incomplete_scopes(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        recover.parse_args(argv)
    assert exit_info.value.code == 2


def test_backfill_refuses_a_date_that_is_not_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        backfill.parse_args(["--repo", "o/n", "--since", "yesterday"])
    assert "'yesterday' is not a date" in capsys.readouterr().err
