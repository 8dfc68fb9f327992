"""What one worker process does: build its own clients after it starts, then run the loop."""

from __future__ import annotations

import logging
import os
import signal
import sys

from backend.idempotency import Ledger, owner_id
from backend.processor import Processor
from backend.settings import BackendSettings
from backend.shutdown import StopNow, Stopper
from backend.sinks import build_sink
from backend.worker import SETTLE_THREADS, Worker, WorkerConfig
from common.logs import configure_logging
from common.settings import EXIT_CONFIG

log = logging.getLogger(__name__)

# EXIT_CONFIG (78): a restart cannot fix it, so the supervisor stops instead of respawning.
__all__ = ["EXIT_CONFIG", "EXIT_FORCED", "close_ledger", "run_worker"]
EXIT_FORCED = 1


def close_ledger(ledger: Ledger) -> None:
    """Close the ledger's threads and HTTP session, if it has any."""
    close = getattr(ledger, "close", None)
    if callable(close):
        close()


def run_worker(settings: BackendSettings, parent_pid: int) -> None:
    """Entry point of a spawned worker process; exits 0 after a graceful stop.

    The supervisor forwards SIGTERM and escalates with SIGKILL; SIGINT is ignored because a
    terminal's Ctrl-C reaches the whole process group and the supervisor already turns it into
    SIGTERM.
    """
    configure_logging("backend", settings.logging)
    stopper = Stopper(escalate=False)
    stopper.install(signals=(signal.SIGTERM,), ignored=(signal.SIGINT,))
    # Imported here: nothing of the Azure SDK exists before the spawn.
    from backend.idempotency import create_ledger
    from common.azure_queue import create_queue

    ledger_settings = settings.ledger
    try:
        sink = build_sink(settings)
    except ValueError as error:  # a sink's connection string is checked as it is built
        log.error("worker cannot start: %s", error)
        sys.exit(EXIT_CONFIG)
    # A connection for each settle thread: a batch's messages are settled side by side.
    # The settle threads and the loop's own receive or extend, which can overlap them.
    queue = create_queue(settings.storage, connections=SETTLE_THREADS + 1)
    ledger = create_ledger(settings.storage, ledger_settings)
    owner = owner_id()
    log.info(
        "worker %d: ledger %s as owner %s, lease %d s",
        os.getpid(),
        ledger_settings.table_name if ledger_settings.enabled else "disabled",
        owner,
        ledger_settings.lease_s,
    )
    worker = Worker(
        queue,
        Processor(
            sink,
            settings.max_dequeue_count,
            ledger=ledger,
            ledger_settings=ledger_settings,
            owner=owner,
        ),
        WorkerConfig.from_settings(settings, lease_s=ledger_settings.lease_s),
        stopper=stopper,
        parent_pid=parent_pid,
    )
    code = 0
    try:
        worker.work()
    except StopNow:
        log.warning("stopped at once: messages in flight reappear after their visibility timeout")
        code = EXIT_FORCED
    finally:
        sink.close()
        queue.close()
        close_ledger(ledger)
    sys.exit(code)
