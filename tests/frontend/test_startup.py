"""Importing the frontend, and building its app, start no thread and register no hook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.azurite import PROJECT_ROOT

# Run in a fresh interpreter: this test process has imported everything long ago.
_PROBE = r"""
import atexit, importlib, json, os, pkgutil, runpy, sys, threading

registered = []


def recording(register):
    def record(*args, **kwargs):
        registered.append(sys._getframe(1).f_globals.get("__name__", "?"))
        return register(*args, **kwargs)

    return record


atexit.register = recording(atexit.register)
os.register_at_fork = recording(os.register_at_fork)
before = set(threading.enumerate())

imported = []
for package in ("common", "frontend"):
    for module in pkgutil.iter_modules([package]):
        imported.append(importlib.import_module(f"{package}.{module.name}").__name__)
# gunicorn runs its configuration file, which is not an importable module.
runpy.run_path(os.path.join("frontend", "gunicorn.conf.py"))
after_import = [thread.name for thread in threading.enumerate() if thread not in before]

from frontend.app import create_app

app = create_app()
after_app = [thread.name for thread in threading.enumerate() if thread not in before]
print(json.dumps({
    "imported": imported,
    "threads_after_import": after_import,
    "threads_after_create_app": after_app,
    "registered_by_the_project": [
        name for name in registered if name.split(".")[0] in {"common", "frontend", "backend"}
    ],
}))
"""


def test_importing_the_frontend_and_building_its_app_start_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "AZURE_"))}
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        HOME=str(tmp_path),
        GITHUB_WEBHOOK_SECRET="secret",
        AZURE_STORAGE_CONNECTION_STRING="UseDevelopmentStorage=true",
    )

    probe = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    found = json.loads(probe.stdout.splitlines()[-1])
    assert {"frontend.app", "frontend.batching", "common.azure_queue"} <= set(found["imported"])
    assert found["threads_after_import"] == []
    assert found["threads_after_create_app"] == []
    assert found["registered_by_the_project"] == []
