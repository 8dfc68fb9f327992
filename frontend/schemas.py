"""Marshmallow schemas of the ids the backend needs in each queued event's payload.

They refuse what GitHub never sends, so that nothing the backend could only poison is queued:
an action is a short identifier, ids are positive 64-bit integers, names hold no NUL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

# GitHub's actions are lowercase words joined by underscores ("in_progress"); one it adds later
# has the same shape, is queued, and the backend acknowledges it without telemetry.
ACTION = re.compile(r"[a-z_]{1,32}\Z")
# Ids are 64-bit database ids; a larger or non-positive one is not GitHub's.
MAX_ID = 2**63 - 1


def _id() -> fields.Integer:
    return fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_ID, error="must be a positive 64-bit integer"),
    )


def _no_nul(value: str) -> None:
    if "\0" in value:
        raise ValidationError("must not contain NUL")


class _Ids(Schema):
    """A schema that checks the declared fields and ignores every other key."""

    class Meta:
        unknown = EXCLUDE


class _RepositoryIds(_Ids):
    id = _id()
    full_name = fields.String(required=True, validate=[validate.Length(min=1), _no_nul])


class _RunIds(_Ids):
    id = _id()
    run_attempt = _id()


class _JobIds(_Ids):
    id = _id()
    run_id = _id()


class _DeliveryIds(_Ids):
    action = fields.String(
        required=True,
        validate=validate.Regexp(
            ACTION, error="must be 1 to 32 lowercase letters or underscores (GitHub's actions)"
        ),
    )
    repository = fields.Nested(_RepositoryIds, required=True)


class WorkflowRunIds(_DeliveryIds):
    """A `workflow_run` delivery: action, repository and the run's id and attempt."""

    workflow_run = fields.Nested(_RunIds, required=True)


class WorkflowJobIds(_DeliveryIds):
    """A `workflow_job` delivery: action, repository and the job's id and run id."""

    workflow_job = fields.Nested(_JobIds, required=True)


def describe_errors(errors: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Flatten marshmallow's nested error messages into `path: message` lines."""
    lines: list[str] = []
    for key, value in errors.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            lines.extend(describe_errors(value, f"{path}."))
        else:
            messages = value if isinstance(value, list) else [value]
            lines.extend(f"{path}: {str(message).rstrip('.').lower()}" for message in messages)
    return lines
