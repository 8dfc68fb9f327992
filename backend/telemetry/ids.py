"""Deterministic W3C-style ids: one operation per run attempt, one span-like id per item."""

from __future__ import annotations

import hashlib


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def operation_id(repository_id: str, run_id: str, attempt: str) -> str:
    """Return the 32-hex operation id shared by every item of one run attempt."""
    return _digest("operation", repository_id, run_id, attempt)[:32]


def item_id(event_name: str, *identity: str) -> str:
    """Return the 16-hex id of the item named `event_name` for one entity's identity."""
    return _digest(event_name, *identity)[:16]


def run_attempt_id(repository_id: str, run_id: str, attempt: str) -> str:
    """Return the id of a run attempt: its WorkflowRun item id, and its jobs' parent id."""
    return item_id("WorkflowRun", repository_id, run_id, attempt)


def job_item_id(repository_id: str, job_id: str) -> str:
    """Return the id of a job: its WorkflowJob item id, and its steps' parent id."""
    return item_id("WorkflowJob", repository_id, job_id)
