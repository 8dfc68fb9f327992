"""What every event mapped from one delivery shares: its GitHub object, its ids, its properties."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.telemetry import ids


@dataclass(frozen=True)
class EventContext:
    """The parts of a `workflow_run` or `workflow_job` delivery each of its events needs.

    `subject` is the delivery's `workflow_run` or `workflow_job` object; `job_id` is empty for
    a run.
    """

    subject: Mapping[str, Any]
    repository_id: str
    run_id: str
    attempt: str
    properties: dict[str, str]
    job_id: str = ""

    @property
    def operation_id(self) -> str:
        """The operation every item of this run attempt belongs to."""
        return ids.operation_id(self.repository_id, self.run_id, self.attempt)

    @property
    def operation_name(self) -> str:
        """The name of the operation: the workflow's name, the same on every item of the run."""
        return self.properties.get("workflow_name", "")

    @property
    def run_attempt_id(self) -> str:
        """The id of the run attempt: a WorkflowRun's item id and its jobs' parent id."""
        return ids.run_attempt_id(self.repository_id, self.run_id, self.attempt)

    @property
    def job_item_id(self) -> str:
        """The job's own id: its WorkflowJob item id and its steps' parent id."""
        return ids.job_item_id(self.repository_id, self.job_id)
