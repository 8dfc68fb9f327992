"""What one worker process does: build its own clients after it starts, then run the loop."""

from __future__ import annotations

import logging
import signal
import sys

from backend.processor import Processor
from backend.shutdown import StopNow, Stopper
from backend.sinks import build_sink
from backend.worker import Worker, WorkerConfig
from common.logs import configure_logging
from common.settings import BackendSettings

log = logging.getLogger(__name__)

# sysexits.h EX_CONFIG: a restart cannot fix this, so the supervisor stops instead of respawning.
EXIT_CONFIG = 78
EXIT_FORCED = 1


def run_worker(settings: BackendSettings, parent_pid: int) -> None:
    """Entry point of a spawned worker process; exits 0 after a graceful stop.

    The supervisor forwards SIGTERM and escalates with SIGKILL; SIGINT is ignored because a
    terminal's Ctrl-C reaches the whole process group and the supervisor already turns it into
    SIGTERM.
    """
    configure_logging("backend")
    stopper = Stopper(escalate=False)
    stopper.install(signals=(signal.SIGTERM,), ignored=(signal.SIGINT,))
    from common.azure_queue import create_queue  # imported here: nothing of it exists pre-spawn

    try:
        sink = build_sink(settings)
    except ValueError as error:
        log.error("worker cannot start: %s", error)
        sys.exit(EXIT_CONFIG)
    queue = create_queue(settings.storage)
    worker = Worker(
        queue,
        Processor(sink, settings.max_dequeue_count),
        WorkerConfig.from_settings(settings),
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
    sys.exit(code)
