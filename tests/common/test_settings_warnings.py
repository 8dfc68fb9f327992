"""Settings say what they ignore: near misses, the sink nobody chose, and one refusal line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.settings import backend_warnings, check_sink_choice, load_backend_settings
from common.settings import (
    SettingsError,
    container_hint,
    edit_distance,
    load_storage_settings,
)
from frontend.settings import frontend_warnings
from tools.azurite import PROJECT_ROOT

AZURITE = "UseDevelopmentStorage=true"


@pytest.mark.parametrize(
    ("first", "second", "distance"),
    [("", "abc", 3), ("kitten", "sitting", 3), ("HOST", "HOME", 2), ("same", "same", 0)],
)
def test_edit_distance(first: str, second: str, distance: int) -> None:
    assert edit_distance(first, second) == distance == edit_distance(second, first)


def test_the_backend_names_the_setting_a_typo_meant() -> None:
    env = {
        "APPLICATIONINSIGHT_CONNECTION_STRING": "InstrumentationKey=x",
        "BACKEND_WORKER_PROCESS": "1",
        "BACKEND_PARALLELISM": "4",
        "BACKEND_PROCESSES_WORKER": "4",
        # Read as they are, or nothing like a backend setting: no warning.
        "WORKER_PROCESSES": "2",
        "BACKEND_HEARTBEAT_FILE": "/tmp/hb",
        "HOME": "/root",
        "PATH": "/usr/bin",
        "GITHUB_WEBHOOK_SECRET": "s",
    }

    assert backend_warnings(env) == [
        "APPLICATIONINSIGHT_CONNECTION_STRING is set but not read: did you mean "
        "APPLICATIONINSIGHTS_CONNECTION_STRING?",
        "BACKEND_PARALLELISM is set but is not a setting",
        "BACKEND_PROCESSES_WORKER is set but is not a setting (the closest is "
        "BACKEND_WORKER_PROCESSES)",
        "BACKEND_WORKER_PROCESS is set but not read: did you mean BACKEND_WORKER_PROCESSES?",
    ]


def test_the_frontend_names_the_setting_a_typo_meant() -> None:
    env = {"GITHUB_WEBHOOK_SECRETS": "s", "FRONTEND_PACK": "no", "PORTS": "1", "HOME": "/root"}

    assert frontend_warnings(env) == [
        "FRONTEND_PACK is set but is not a setting (the closest is FRONTEND_PACKING)",
        "GITHUB_WEBHOOK_SECRETS is set but not read: did you mean GITHUB_WEBHOOK_SECRET?",
        "PORTS is set but not read: did you mean PORT?",
    ]


def test_warnings_are_collected_even_when_loading_stops() -> None:
    warnings: list[str] = []
    # Given the connection string's name mistyped, so no storage is set at all
    with pytest.raises(SettingsError):
        load_backend_settings({"AZURE_STORAGE_CONECTION_STRING": AZURITE}, warnings)

    assert warnings == [
        "AZURE_STORAGE_CONECTION_STRING is set but not read: did you mean "
        "AZURE_STORAGE_CONNECTION_STRING?"
    ]


def test_container_hints(tmp_path: Path) -> None:
    assert container_hint({}, tmp_path) is None
    assert (
        container_hint({"CONTAINER_APP_NAME": "backend"}, tmp_path) == "CONTAINER_APP_NAME is set"
    )
    assert container_hint({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path) == (
        "KUBERNETES_SERVICE_HOST is set"
    )
    (tmp_path / ".dockerenv").touch()
    assert container_hint({}, tmp_path) == "/.dockerenv exists"


def test_a_local_file_nobody_chose_is_refused_and_a_chosen_one_is_kept() -> None:
    unset = load_backend_settings({"AZURE_STORAGE_CONNECTION_STRING": AZURITE})
    chosen = load_backend_settings(
        {"AZURE_STORAGE_CONNECTION_STRING": AZURITE, "BACKEND_TELEMETRY_SINK": "file"}
    )
    appinsights = load_backend_settings(
        {
            "AZURE_STORAGE_CONNECTION_STRING": AZURITE,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x",
        }
    )

    with pytest.raises(SettingsError) as raised:
        check_sink_choice(unset, {"CONTAINER_APP_NAME": "backend"})
    assert str(raised.value) == (
        "APPLICATIONINSIGHTS_CONNECTION_STRING is not set and this is a container "
        "(CONTAINER_APP_NAME is set), where a local file is lost: set it, or set "
        "TELEMETRY_SINK=file to write telemetry to TELEMETRY_FILE (var/telemetry.jsonl by default)"
    )
    check_sink_choice(chosen, {"CONTAINER_APP_NAME": "backend"})
    check_sink_choice(appinsights, {"CONTAINER_APP_NAME": "backend"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TELEMETRY_SINK": "disk"}, "TELEMETRY_SINK must be file or appinsights, got 'disk'"),
        (
            {"BACKEND_TELEMETRY_SINK": "appinsights"},
            "BACKEND_TELEMETRY_SINK is appinsights but APPLICATIONINSIGHTS_CONNECTION_STRING "
            "is not set",
        ),
    ],
)
def test_a_telemetry_sink_that_cannot_work_stops_the_settings(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_backend_settings({"AZURE_STORAGE_CONNECTION_STRING": AZURITE, **env})
    assert str(raised.value) == message


def test_an_account_key_that_is_not_base64_fails_the_start_check_without_echoing_it() -> None:
    with pytest.raises(SettingsError) as raised:
        load_storage_settings(
            {"AZURE_STORAGE_CONNECTION_STRING": "AccountName=foo;AccountKey=barbarbar"}
        )

    assert str(raised.value) == (
        "AZURE_STORAGE_CONNECTION_STRING has an AccountKey that is not base64 (copy the key again)"
    )


def _service(
    command: list[str], tmp_path: Path, **variables: str
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AZURE_", "APPLICATIONINSIGHTS", "BACKEND_", "TELEMETRY_", "LOG_"))
        and key != "GITHUB_WEBHOOK_SECRET"
    }
    env.update(PYTHONPATH=str(PROJECT_ROOT), BACKEND_HEARTBEAT_FILE=str(tmp_path / "hb"))
    env.update(variables)
    # Run outside the checkout so that its `.env` is not read.
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


BACKEND = [sys.executable, "-m", "backend"]
FRONTEND = [
    str(Path(sys.executable).parent / "gunicorn"),
    "--config",
    str(PROJECT_ROOT / "frontend" / "gunicorn.conf.py"),
    "frontend.app:create_app()",
]


@pytest.mark.slow
def test_a_backend_in_a_container_without_app_insights_refuses_in_one_line(tmp_path: Path) -> None:
    # Given App Insights' variable mistyped, in a container
    result = _service(
        BACKEND,
        tmp_path,
        AZURE_STORAGE_CONNECTION_STRING=AZURITE,
        APPLICATIONINSIGHT_CONNECTION_STRING="InstrumentationKey=x",
        CONTAINER_APP_NAME="backend",
    )

    assert result.returncode == 78
    assert result.stderr.splitlines() == [
        "github-telemetry backend: APPLICATIONINSIGHT_CONNECTION_STRING is set but not read: "
        "did you mean APPLICATIONINSIGHTS_CONNECTION_STRING?",
        "github-telemetry backend cannot start: APPLICATIONINSIGHTS_CONNECTION_STRING is not set "
        "and this is a container (CONTAINER_APP_NAME is set), where a local file is lost: set it, "
        "or set TELEMETRY_SINK=file to write telemetry to TELEMETRY_FILE "
        "(var/telemetry.jsonl by default)",
    ]
    assert not (tmp_path / "hb").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "service", "variables", "message"),
    [
        (
            BACKEND,
            "backend",
            {"WORKER_PROCESSES": "0"},
            "WORKER_PROCESSES must be at least 1, got '0'",
        ),
        (
            BACKEND,
            "backend",
            {"BACKEND_WORKER_PROCESSES": "0"},
            "BACKEND_WORKER_PROCESSES must be at least 1, got '0'",
        ),
        (
            FRONTEND,
            "frontend",
            {"GITHUB_WEBHOOK_SECRET": "s", "PORT": "0"},
            "PORT must be at least 1, got '0'",
        ),
        (
            BACKEND,
            "backend",
            {"LOG_FORMAT": "yaml"},
            "LOG_FORMAT must be one of json, text, got 'yaml'",
        ),
        (
            FRONTEND,
            "frontend",
            {"GITHUB_WEBHOOK_SECRET": "s", "LOG_LEVEL": "LOUD"},
            "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'LOUD'",
        ),
    ],
)
def test_both_services_refuse_bad_settings_alike_naming_the_variable_set(
    tmp_path: Path, command: list[str], service: str, variables: dict[str, str], message: str
) -> None:
    result = _service(
        command,
        tmp_path,
        AZURE_STORAGE_CONNECTION_STRING=AZURITE,
        TELEMETRY_SINK="file",
        **variables,
    )

    assert result.returncode == 78
    assert result.stderr.splitlines() == [f"github-telemetry {service} cannot start: {message}"]
