"""GitHub conclusions mapped to the OpenTelemetry CI/CD result vocabulary."""

from __future__ import annotations

import pytest

from backend.telemetry.results import result_of


@pytest.mark.parametrize(
    ("conclusion", "result"),
    [
        ("success", "success"),
        ("neutral", "success"),
        ("failure", "failure"),
        ("action_required", "failure"),
        ("stale", "failure"),
        ("cancelled", "cancellation"),
        ("skipped", "skip"),
        ("timed_out", "timeout"),
        ("startup_failure", "error"),
        ("", ""),
        ("in_progress", ""),
        ("something_new", ""),
        ("SUCCESS", "success"),
    ],
)
def test_result_of(conclusion: str, result: str) -> None:
    assert result_of(conclusion) == result
