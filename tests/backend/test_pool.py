"""The supervisor's decisions: restart backoff, configuration errors, signal forwarding."""

from __future__ import annotations

import signal
import sys

import pytest

from backend.pool import RESTART_DELAY_CAP_S, STABLE_AFTER_S, Slot, Supervisor
from backend.process import EXIT_CONFIG
from backend.settings import load_backend_settings
from backend.shutdown import Stopper

SETTINGS = load_backend_settings({"AZURE_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"})


class ExitedProcess:
    """Stands in for a worker process that has already exited."""

    def __init__(self, exitcode: int) -> None:
        self.exitcode = exitcode
        self.pid = 4242

    def join(self) -> None:
        """Nothing to wait for."""


def test_a_worker_that_dies_young_is_restarted_with_growing_delays() -> None:
    supervisor = Supervisor(SETTINGS, processes=1, clock=lambda: 100.0)
    slot = Slot(0, started_at=99.0)
    delays = []
    for _ in range(7):
        supervisor.reap(slot, ExitedProcess(1), now=100.0)  # type: ignore[arg-type]
        delays.append(slot.restart_delay_s)

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, RESTART_DELAY_CAP_S, RESTART_DELAY_CAP_S]
    assert slot.restart_at == 100.0 + RESTART_DELAY_CAP_S


def test_a_worker_that_ran_a_while_is_restarted_at_once_and_its_backoff_starts_over() -> None:
    supervisor = Supervisor(SETTINGS, processes=1)
    slot = Slot(0, started_at=0.0)
    for _ in range(5):
        supervisor.reap(slot, ExitedProcess(1), now=1.0)  # type: ignore[arg-type]
    assert slot.restart_delay_s == 16.0

    supervisor.reap(slot, ExitedProcess(-9), now=STABLE_AFTER_S + 1)  # type: ignore[arg-type]
    assert (slot.restart_delay_s, slot.restart_at) == (0.0, STABLE_AFTER_S + 1)

    slot.started_at = STABLE_AFTER_S + 1
    supervisor.reap(slot, ExitedProcess(1), now=STABLE_AFTER_S + 2)  # type: ignore[arg-type]
    assert slot.restart_delay_s == 1.0


def exit_with_config_error(_settings: object, _parent_pid: int) -> None:
    sys.exit(EXIT_CONFIG)


@pytest.mark.slow
def test_a_configuration_error_stops_the_pool_instead_of_respawning() -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        code = Supervisor(SETTINGS, processes=2, target=exit_with_config_error).run()
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])

    assert code == EXIT_CONFIG


def test_a_pool_worker_does_not_escalate_a_repeated_sigterm() -> None:
    stopper = Stopper(escalate=False)

    stopper.on_signal(signal.SIGTERM, None)
    stopper.on_signal(signal.SIGTERM, None)  # e.g. forwarded and also sent to the group

    assert stopper.requested
