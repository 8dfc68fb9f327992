"""The settle threads' pool: every call observed, none left running, threads only once used."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from backend.shutdown import StopNow
from backend.threadpool import ThreadPool


@pytest.fixture
def pool() -> Iterator[ThreadPool]:
    pool = ThreadPool(2, "test-pool")
    yield pool
    pool.close()


def pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("test-pool")]


def test_every_call_runs_and_what_each_raised_is_returned_in_order(pool: ThreadPool) -> None:
    ran: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> None:
        with lock:
            ran.append(item)
        if item == 1:
            raise ValueError("one")
        if item == 3:
            raise SystemExit(3)

    errors = pool.run_all(work, [0, 1, 2, 3, 4])

    assert sorted(ran) == [0, 1, 2, 3, 4]
    assert [type(error) if error else None for error in errors] == [
        None,
        ValueError,
        None,
        SystemExit,
        None,
    ]


def test_one_item_runs_in_the_caller_and_no_thread_starts_until_needed(pool: ThreadPool) -> None:
    callers: list[str] = []

    def work(_item: int) -> None:
        callers.append(threading.current_thread().name)

    [error] = pool.run_all(work, [0])
    assert (error, callers, pool_threads()) == (None, [threading.current_thread().name], [])

    pool.run_all(work, [1, 2])
    assert pool_threads() != []

    pool.close()
    assert pool_threads() == []


def test_started_calls_run_on_while_the_caller_goes_on_until_it_waits(pool: ThreadPool) -> None:
    release = threading.Event()
    finished: list[int] = []

    def work(item: int) -> None:
        release.wait(5)
        finished.append(item)

    running = pool.start_all(work, [0, 1, 2])
    assert finished == []  # start_all returned with every call still waiting

    release.set()
    assert running.wait() == [None, None, None]
    assert sorted(finished) == [0, 1, 2]


def test_a_forced_stop_while_waiting_drops_calls_not_started_and_waits_for_running_ones(
    pool: ThreadPool,
) -> None:
    # Given two calls running (the pool's two threads) and four queued behind them
    started: list[int] = []
    finished: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def interrupt_the_caller() -> None:
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

    def work(item: int) -> None:
        with lock:
            started.append(item)
            if len(started) == 2:
                # A moment later, when all six are long submitted and the caller waits.
                threading.Timer(0.1, interrupt_the_caller).start()
        release.wait(5.0)
        with lock:
            finished.append(item)

    # When a second signal raises StopNow in the waiting thread, the running calls end later
    def stop_now(_signum: int, _frame: FrameType | None) -> None:
        threading.Timer(0.2, release.set).start()
        raise StopNow("SIGUSR1")

    previous = signal.signal(signal.SIGUSR1, stop_now)
    try:
        with pytest.raises(StopNow):
            pool.run_all(work, list(range(6)))
    finally:
        signal.signal(signal.SIGUSR1, previous)

    # Then it propagated only once the running calls were over, and the others never ran
    assert (sorted(started), sorted(finished)) == ([0, 1], [0, 1])
    pool.close()
    assert sorted(started) == [0, 1]
