"""Backfill: enqueue a repository's past run attempts and jobs as `completed` envelopes.

Runs are listed per created-date window (split below GitHub's 1,000-run cap); for every attempt
of every run, the attempt and its jobs (steps included) are fetched and enqueued on the queue the
frontend fills. The ledger then counts each event once with any live delivery of it, through
the natural keys, so a window may be enqueued again safely; a finished window is checkpointed
and skipped on the next run.
https://docs.github.com/en/rest/actions/workflow-runs#get-a-workflow-run-attempt
https://docs.github.com/en/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run-attempt
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from backend.github.client import GitHubApi, Target
from backend.github.envelopes import COMPLETED, job_envelope, run_envelope
from backend.github.windows import MAX_LISTED_RUNS, Window, windows
from backend.idempotency.records import Records
from common.envelope import Envelope
from common.packing import MessageTooLarge, pack
from common.queue import QueueProducer

log = logging.getLogger(__name__)

DONE = "done"


@dataclass
class Tally:
    """What a backfill listed, enqueued and skipped, and what a dry run expects to call."""

    windows: int = 0
    skipped_windows: int = 0
    runs: int = 0
    attempts: int = 0
    jobs: int = 0
    envelopes: int = 0
    too_large: int = 0
    calls_ahead: int = 0

    def line(self, calls: int, dry_run: bool) -> str:
        """The summary line the command prints."""
        text = (
            f"windows {self.windows} ({self.skipped_windows} already done), runs {self.runs}, "
            f"attempts {self.attempts}"
        )
        if dry_run:
            return (
                f"{text}; API calls made {calls}, about {self.calls_ahead} more to fetch the "
                f"attempts and their jobs (at least 2 per attempt)"
            )
        text += f", jobs {self.jobs}, envelopes enqueued {self.envelopes}, API calls {calls}"
        return text + (f", too large to enqueue {self.too_large}" if self.too_large else "")


class Progress:
    """A one-line progress report on stderr: redrawn in place on a terminal, else one line each."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._live = self._stream.isatty()

    def show(self, text: str) -> None:
        """Show `text` as the current progress."""
        if self._live:
            self._stream.write(f"\r\x1b[K{text}")
        else:
            self._stream.write(f"{text}\n")
        self._stream.flush()

    def close(self) -> None:
        """End the redrawn line."""
        if self._live:
            self._stream.write("\n")
            self._stream.flush()


class Backfill:
    """One run of `backfill` over one repository."""

    def __init__(
        self,
        api: GitHubApi,
        target: Target,
        records: Records,
        queue: QueueProducer | None,
        now: datetime,
        *,
        workflow: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.api = api
        self.target = target
        self.records = records
        self.queue = queue
        self.now = now
        self.workflow = workflow
        self.progress = progress or Progress()
        self.tally = Tally()
        self._repository: Mapping[str, Any] = {}
        self._total = 0

    @property
    def dry_run(self) -> bool:
        """No queue: only count and estimate."""
        return self.queue is None

    def run(self, since: datetime, until: datetime) -> Tally:
        """Backfill the runs created in [since, until).

        Raises:
            GitHubError: a call failed; finished windows stay checkpointed.
            QueueError: the queue refused a message.
            LedgerError: the ledger's table failed.
        """
        rest = self.api.rest
        self._repository = self.api.json(rest.repos.get, self.target.owner, self.target.name)
        planned = windows(since, until)
        self._total = len(planned)
        try:
            for window in planned:
                self._window(window)
                self._show()
        finally:
            self.progress.close()
        return self.tally

    def _checkpoint(self, window: Window) -> str:
        scope = f"{self.target.owner}/{self.target.name}:{self.workflow or '*'}"
        return f"backfill:{scope}:{window.name}"

    def _window(self, window: Window, top: bool = True) -> None:
        """List one window, splitting it while it lists too many; checkpoint it when done."""
        if top:
            self.tally.windows += 1
        if self.records.checkpoint(self._checkpoint(window)) == DONE:
            self.tally.skipped_windows += 1
            return
        halves = window.halves()
        if halves is not None and self._count(window) >= MAX_LISTED_RUNS:
            log.info("window %s lists %d runs or more: split", window.query, MAX_LISTED_RUNS)
            for half in halves:
                self._window(half, top=False)
        else:
            for run in self._runs(window):
                self._run(run)
        if not self.dry_run:
            self.records.save_checkpoint(self._checkpoint(window), DONE, self.now)

    def _list(self) -> tuple[Any, tuple[Any, ...]]:
        """The list endpoint and its leading arguments: all runs, or one workflow's."""
        actions = self.api.rest.actions
        where: tuple[Any, ...] = (self.target.owner, self.target.name)
        if self.workflow is None:
            return actions.list_workflow_runs_for_repo, where
        return actions.list_workflow_runs, (*where, self.workflow)

    def _count(self, window: Window) -> int:
        request, where = self._list()
        body = self.api.json(request, *where, created=window.query, status=COMPLETED, per_page=1)
        count = body.get("total_count") if isinstance(body, Mapping) else None
        return count if isinstance(count, int) else 0

    def _runs(self, window: Window) -> Iterator[Mapping[str, Any]]:
        request, where = self._list()
        runs = self.api.items(
            request, "workflow_runs", *where, created=window.query, status=COMPLETED
        )
        for run in runs:
            if isinstance(run, Mapping) and isinstance(run.get("id"), int):
                yield run

    def _run(self, run: Mapping[str, Any]) -> None:
        attempts = run.get("run_attempt")
        count = attempts if isinstance(attempts, int) and attempts > 0 else 1
        self.tally.runs += 1
        self.tally.attempts += count
        if self.dry_run:
            # Per attempt: the attempt itself and at least one page of its jobs.
            self.tally.calls_ahead += 2 * count
            return
        for attempt in range(1, count + 1):
            self._attempt(int(run["id"]), attempt)

    def _attempt(self, run_id: int, attempt: int) -> None:
        rest = self.api.rest
        where = (self.target.owner, self.target.name, run_id, attempt)
        run = self.api.json(rest.actions.get_workflow_run_attempt, *where)
        if not isinstance(run, Mapping) or run.get("status") != COMPLETED:
            return
        jobs = self.api.items(rest.actions.list_jobs_for_workflow_run_attempt, "jobs", *where)
        for job in jobs:
            if isinstance(job, Mapping) and job.get("status") == COMPLETED:
                self.tally.jobs += 1
                self._enqueue(job_envelope(job, run, self._repository, self.now))
        self._enqueue(run_envelope(run, self._repository, self.now))

    def _enqueue(self, envelope: Envelope) -> None:
        assert self.queue is not None
        try:
            packed = pack(envelope)
        except MessageTooLarge as error:
            log.warning("not enqueued: %s", error)
            self.tally.too_large += 1
            return
        self.queue.send(packed.text)
        self.tally.envelopes += 1

    def _show(self) -> None:
        tally = self.tally
        self.progress.show(
            f"{self.target.owner}/{self.target.name}: window {tally.windows}/{self._total}, "
            f"{tally.runs} runs, {tally.attempts} attempts, {tally.envelopes} enqueued, "
            f"{self.api.budget.calls} API calls"
        )
