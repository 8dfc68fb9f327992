"""Marshmallow schemas of the ids the backend needs in each queued event's payload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate


class _Ids(Schema):
    """A schema that checks the declared fields and ignores every other key."""

    class Meta:
        unknown = EXCLUDE


class _RepositoryIds(_Ids):
    id = fields.Integer(required=True, strict=True)
    full_name = fields.String(required=True, validate=validate.Length(min=1))


class _RunIds(_Ids):
    id = fields.Integer(required=True, strict=True)
    run_attempt = fields.Integer(required=True, strict=True)


class _JobIds(_Ids):
    id = fields.Integer(required=True, strict=True)
    run_id = fields.Integer(required=True, strict=True)


class _DeliveryIds(_Ids):
    action = fields.String(required=True, validate=validate.Length(min=1))
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
