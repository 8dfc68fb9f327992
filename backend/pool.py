"""The supervisor: spawns the worker processes, respawns the ones that die, forwards shutdown.

Workers are started with multiprocessing's "spawn" context: each is a fresh interpreter that
builds its own queue client and exporter, so no thread, lock or HTTP session (opencensus and
the Azure SDK both start threads) is ever copied across a fork. The supervisor imports neither.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

from backend.backoff import Backoff
from backend.health import beat, heartbeat_path
from backend.process import EXIT_CONFIG, run_worker
from backend.settings import BackendSettings

log = logging.getLogger(__name__)

RESTART_DELAY_INITIAL_S = 1.0
RESTART_DELAY_CAP_S = 30.0
# A worker that ran this long before dying is restarted at once; a crash loop backs off.
STABLE_AFTER_S = 30.0
REAP_INTERVAL_S = 0.5

WorkerTarget = Callable[[BackendSettings, int], None]


def restart_backoff() -> Backoff:
    """The delays before restarting a worker that keeps dying young: 1 s, doubling to 30 s."""
    return Backoff(RESTART_DELAY_INITIAL_S, RESTART_DELAY_CAP_S)


@dataclass
class Slot:
    """One place in the pool and the process currently filling it."""

    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    restart_delay_s: float = 0.0
    restart_at: float = 0.0
    crashes: Backoff = field(default_factory=restart_backoff)


class Supervisor:
    """Keeps `processes` workers running until told to stop (two-stage, like the workers)."""

    def __init__(
        self,
        settings: BackendSettings,
        processes: int,
        target: WorkerTarget = run_worker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.slots = [Slot(index) for index in range(processes)]
        self._target = target
        self._clock = clock
        self._context = multiprocessing.get_context("spawn")
        self._stopping = False
        self._forced = False
        self._exit_code = 0
        self._heartbeat = heartbeat_path()

    def run(self) -> int:
        """Supervise until every worker has exited after a stop; return the exit code."""
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        log.info("supervisor %d starting %d workers", os.getpid(), len(self.slots))
        for slot in self.slots:
            self.spawn(slot)
        while not self._stopping:
            self.reap_and_respawn()
            if self.alive():
                beat(self._heartbeat)
            self.wait_for_children(REAP_INTERVAL_S)
        while self.alive():
            self.wait_for_children(REAP_INTERVAL_S)
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join()
        log.info("supervisor %d stopped", os.getpid())
        return 1 if self._forced else self._exit_code

    def spawn(self, slot: Slot) -> None:
        """Start a fresh worker process in `slot`."""
        process = self._context.Process(
            target=self._target,
            args=(self.settings, os.getpid()),
            name=f"backend-worker-{slot.index}",
        )
        process.start()
        slot.process, slot.started_at = process, self._clock()
        log.info("worker %d started in slot %d", process.pid, slot.index)

    def reap_and_respawn(self) -> None:
        """Notice dead workers and restart them, backing off when they die young."""
        now = self._clock()
        for slot in self.slots:
            process = slot.process
            if process is not None and process.exitcode is not None:
                self.reap(slot, process, now)
            if slot.process is None and now >= slot.restart_at and not self._stopping:
                self.spawn(slot)

    def reap(self, slot: Slot, process: BaseProcess, now: float) -> None:
        """Record a worker's exit and schedule its restart."""
        process.join()
        slot.process = None
        if process.exitcode == EXIT_CONFIG:
            log.error("worker %d has a configuration error: stopping the pool", process.pid)
            self._exit_code = EXIT_CONFIG
            self.request_stop()
            return
        lived_s = now - slot.started_at
        if lived_s >= STABLE_AFTER_S:
            slot.crashes.reset()
            slot.restart_delay_s = 0.0
        else:
            slot.restart_delay_s = slot.crashes.next_delay_s()
        slot.restart_at = now + slot.restart_delay_s
        log.warning(
            "worker %d in slot %d exited with %s after %.1f s; restarting in %.1f s",
            process.pid,
            slot.index,
            process.exitcode,
            lived_s,
            slot.restart_delay_s,
        )

    def wait_for_children(self, timeout_s: float) -> None:
        """Sleep until a worker exits or `timeout_s` passes."""
        sentinels = [slot.process.sentinel for slot in self.slots if slot.process is not None]
        if sentinels:
            wait(sentinels, timeout=timeout_s)
        else:
            time.sleep(timeout_s)

    def alive(self) -> bool:
        """True while any worker process is running."""
        return any(s.process is not None and s.process.is_alive() for s in self.slots)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """First signal: ask workers to finish their batch and stop. Second: kill them."""
        name = signal.Signals(signum).name
        if not self._stopping:
            log.info("%s received: asking workers to finish their batch and stop", name)
            self.request_stop()
            return
        log.warning("%s received again: killing workers now", name)
        self._forced = True
        for slot in self.slots:
            if slot.process is not None and slot.process.is_alive():
                slot.process.kill()

    def request_stop(self) -> None:
        """Stop respawning and forward SIGTERM to every worker."""
        self._stopping = True
        for slot in self.slots:
            process = slot.process
            if process is not None and process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
