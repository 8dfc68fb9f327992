"""checkov's Bicep policies: every finding fixed, or suppressed in the template with a reason.

checkov has dependencies that conflict with this project's (it pins `packaging<24`, pytest 9
needs 24 or later), so it lives in a virtualenv of its own, `var/checkov`, which `make install`
builds from requirements/checkov.txt. checkov exits 0 when it cannot parse a file, so the tests
read its JSON summary; `test_syntax.py` is the syntax gate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep import INFRA, broken_copy
from tools.azurite import PROJECT_ROOT

CHECKOV_TIMEOUT_S = 300


def _checkov() -> str:
    """The checkov executable: `var/checkov`'s, else one on PATH; skips (fails under CI) if none."""
    own = PROJECT_ROOT / "var" / "checkov" / "bin" / "checkov"
    found = str(own) if own.exists() else shutil.which("checkov")
    if found is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("checkov is not installed under CI: run `make install`")
        pytest.skip("checkov is not installed: run `make install`")
    return found


def scan(root: Path) -> dict[str, Any]:
    """checkov's JSON report of the Bicep templates under `root`."""
    result = subprocess.run(
        [
            _checkov(),
            "--framework",
            "bicep",
            "--skip-download",
            "-o",
            "json",
            "-d",
            str(root),
        ],  # noqa: E501
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_S,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in {0, 1}, result.stderr[-2000:]
    report = json.loads(result.stdout)
    return dict(report[0] if isinstance(report, list) else report)


def _failed(report: dict[str, Any]) -> list[str]:
    failed = report.get("results", {}).get("failed_checks", [])
    return [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in failed]


@pytest.mark.slow
def test_every_finding_is_fixed_or_suppressed_with_a_reason() -> None:
    report = scan(INFRA)

    summary = report["summary"]
    assert _failed(report) == []
    assert (summary["parsing_errors"], summary["failed"]) == (0, 0)
    assert summary["passed"] > 0
    skipped = report["results"]["skipped_checks"]
    reasons = [check["check_result"]["suppress_comment"].strip() for check in skipped]
    assert reasons and all(len(reason) >= 20 for reason in reasons), reasons


@pytest.mark.slow
def test_a_removed_suppression_is_a_finding(tmp_path: Path) -> None:
    broken = broken_copy(
        tmp_path, "modules/registry.bicep", "// checkov:skip=CKV_AZURE_139", "// no"
    )

    report = scan(broken)

    assert [line.split()[0] for line in _failed(report)] == ["CKV_AZURE_139"]


@pytest.mark.slow
def test_a_template_checkov_cannot_parse_is_a_parsing_error_not_a_failure(tmp_path: Path) -> None:
    broken = broken_copy(
        tmp_path, "modules/storage.bicep", "  name: accountName\n", "  name accountName\n"
    )  # noqa: E501

    summary = scan(broken)["summary"]

    assert summary["parsing_errors"] == 1
