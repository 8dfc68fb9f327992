"""The backend's container health check: a heartbeat file the supervisor keeps fresh."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from backend.health import STALE_AFTER_S, beat, heartbeat_path, is_fresh


def test_heartbeat_path_comes_from_the_environment(tmp_path: Path) -> None:
    target = tmp_path / "hb"

    assert heartbeat_path({"BACKEND_HEARTBEAT_FILE": str(target)}) == target
    assert heartbeat_path({}).name == "github-telemetry-backend.heartbeat"


def test_a_fresh_heartbeat_is_healthy_and_a_stale_or_missing_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    assert not is_fresh(path, time.time())

    beat(path)

    now = path.stat().st_mtime
    assert is_fresh(path, now + 1)
    assert not is_fresh(path, now + STALE_AFTER_S + 1)


def test_beat_into_a_missing_folder_does_not_raise(tmp_path: Path) -> None:
    beat(tmp_path / "missing" / "hb")


def test_health_command_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "hb"
    env = {**os.environ, "BACKEND_HEARTBEAT_FILE": str(path)}
    command = [sys.executable, "-m", "backend.health"]

    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    beat(path)
    fresh = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    old = time.time() - STALE_AFTER_S - 5
    os.utime(path, (old, old))
    stale = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    assert (missing.returncode, fresh.returncode, stale.returncode) == (1, 0, 1)
    assert "missing or older than 60 s" in stale.stdout


def test_a_bad_ledger_setting_stops_the_backend_before_any_worker_starts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
        "BACKEND_VISIBILITY_TIMEOUT_SECONDS": "60",
        "BACKEND_LEDGER_LEASE_SECONDS": "30",
        "BACKEND_HEARTBEAT_FILE": str(tmp_path / "hb"),
    }

    result = subprocess.run(
        [sys.executable, "-m", "backend"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 78
    assert "LEDGER_LEASE_SECONDS (30) must be at least" in result.stderr
    assert "worker" not in result.stderr
    assert not (tmp_path / "hb").exists()
