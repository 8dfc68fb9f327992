"""Reduce a GitHub payload to the fields the telemetry reads, keeping GitHub's own key names.

GitHub's `workflow_run` and `workflow_job` payloads are mostly API URLs and nested copies of the
repository, owner and head commit; none of it is telemetry. Keeping only what the backend maps
makes every delivery fit the queue's 64 KiB message cap once compressed.
https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run
https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_job
"""

from __future__ import annotations

from typing import Any

# A spec is a tuple of kept keys; a key mapped to a nested spec keeps only those sub-keys
# (applied to every element when the value is a list).
Spec = tuple["str | tuple[str, Spec]", ...]

_ACCOUNT: Spec = ("id", "login", "type")
_REPOSITORY: Spec = ("id", "name", "full_name", "private", "visibility", ("owner", _ACCOUNT))
_ENVELOPE_COMMON: Spec = (
    "action",
    ("repository", _REPOSITORY),
    ("organization", ("id", "login")),
    ("enterprise", ("id", "slug")),
    ("installation", ("id",)),
    ("sender", _ACCOUNT),
)

WORKFLOW_RUN_SPEC: Spec = (
    *_ENVELOPE_COMMON,
    ("workflow", ("id", "name", "path")),
    (
        "workflow_run",
        (
            "id",
            "name",
            "display_title",
            "path",
            "workflow_id",
            "run_number",
            "run_attempt",
            "event",
            "status",
            "conclusion",
            "head_branch",
            "head_sha",
            "created_at",
            "updated_at",
            "run_started_at",
            "html_url",
            "previous_attempt_url",
            ("actor", _ACCOUNT),
            ("triggering_actor", _ACCOUNT),
            ("pull_requests", ("id", "number")),
            ("repository", _REPOSITORY),
            ("head_repository", ("id", "full_name")),
            ("head_commit", ("id", "timestamp")),
        ),
    ),
)

WORKFLOW_JOB_SPEC: Spec = (
    *_ENVELOPE_COMMON,
    (
        "workflow_job",
        (
            "id",
            "run_id",
            "run_attempt",
            "workflow_name",
            "name",
            "status",
            "conclusion",
            "head_branch",
            "head_sha",
            "created_at",
            "started_at",
            "completed_at",
            "html_url",
            "labels",
            "runner_id",
            "runner_name",
            "runner_group_id",
            "runner_group_name",
            ("steps", ("name", "number", "status", "conclusion", "started_at", "completed_at")),
        ),
    ),
    ("deployment", ("id", "environment")),
)

SPECS: dict[str, Spec] = {"workflow_run": WORKFLOW_RUN_SPEC, "workflow_job": WORKFLOW_JOB_SPEC}


def reduce_payload(event: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Keep only the keys of `payload` that the telemetry of `event` reads."""
    return _apply(SPECS[event], payload)


def _apply(spec: Spec, value: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for entry in spec:
        if isinstance(entry, str):
            if entry in value:
                kept[entry] = value[entry]
            continue
        key, nested = entry
        if key not in value:
            continue
        child = value[key]
        if isinstance(child, dict):
            kept[key] = _apply(nested, child)
        elif isinstance(child, list):
            kept[key] = [_apply(nested, item) if isinstance(item, dict) else item for item in child]
        else:
            kept[key] = child
    return kept
