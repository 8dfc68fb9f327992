"""Run tools/kusto/check.js (Microsoft's Kusto language service, offline in Node) from tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tools" / "kusto" / "check.js"
PACKAGE = ROOT / "node_modules" / "@kusto" / "language-service-next"
QUERIES = ROOT / "docs" / "queries"


def require_checker() -> None:
    """Skip with the reason when Node or the package is missing; under CI, fail instead."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node is not on PATH")
    if not PACKAGE.exists():
        missing.append("@kusto/language-service-next is not installed (`make install`)")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("; ".join(missing))
        pytest.skip("; ".join(missing))


def diagnose(queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each query's diagnostics: code, severity, message, start, length."""
    require_checker()
    return {name: list(_diagnose(name, text)) for name, text in queries.items()}


def prime(queries: dict[str, str]) -> None:
    """Check many queries in one Node process (loading the service takes seconds)."""
    require_checker()
    for name, diagnostics in _run(json.dumps(queries)).items():
        _known[(name, queries[name])] = tuple(diagnostics)


_known: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {}


def _diagnose(name: str, text: str) -> tuple[dict[str, Any], ...]:
    if (name, text) not in _known:
        prime({name: text})
    return _known[(name, text)]


@cache
def _run(payload: str) -> dict[str, list[dict[str, Any]]]:
    done = subprocess.run(
        ["node", str(CHECKER)],
        input=payload,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    result: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return result


def errors(queries: dict[str, str]) -> dict[str, list[str]]:
    """The error messages of each query that has any, with where they start."""
    found = diagnose(queries)
    return {
        name: [f"{d['code']} at {d['start']}: {d['message']}" for d in diagnostics]
        for name, diagnostics in found.items()
        if any(d["severity"] == "Error" for d in diagnostics)
    }


def query_files() -> dict[str, str]:
    """Every query file's name and text."""
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(QUERIES.glob("*.kql"))}
