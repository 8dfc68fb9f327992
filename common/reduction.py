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
# (applied to every object of a list, e.g. steps). A plain key keeps a scalar or a list of
# scalars (labels); an object, or an array holding one, where GitHub sends those is dropped.
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
        key, nested = (entry, None) if isinstance(entry, str) else entry
        if key not in value:
            continue
        child = value[key]
        if nested is None:
            # A leaf keeps a scalar or a list of scalars (labels); anything nested in its place
            # is not GitHub's shape and is dropped, so the envelope's depth stays the spec's.
            if _is_scalar(child) or (
                isinstance(child, list) and all(_is_scalar(item) for item in child)
            ):
                kept[key] = child
        elif isinstance(child, dict):
            kept[key] = _apply(nested, child)
        elif isinstance(child, list):
            kept[key] = [_apply(nested, item) for item in child if isinstance(item, dict)]
        elif _is_scalar(child):
            kept[key] = child  # e.g. null where GitHub may send no object
    return kept


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
