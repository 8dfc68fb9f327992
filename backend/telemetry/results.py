"""Map GitHub's conclusions to the OpenTelemetry CI/CD result vocabulary."""

from __future__ import annotations

# OpenTelemetry semantic conventions, `cicd.pipeline.result` / `cicd.pipeline.task.run.result`:
# https://opentelemetry.io/docs/specs/semconv/registry/attributes/cicd/
# GitHub's conclusions: https://docs.github.com/en/rest/checks/runs#create-a-check-run
RESULTS: dict[str, str] = {
    "success": "success",
    "neutral": "success",
    "failure": "failure",
    "action_required": "failure",
    "stale": "failure",
    "cancelled": "cancellation",
    "skipped": "skip",
    "timed_out": "timeout",
    "startup_failure": "error",
}


def result_of(conclusion: str) -> str:
    """Return the result for a conclusion; "" while there is none (null) or for an unknown one."""
    return RESULTS.get(conclusion.strip().lower(), "")
