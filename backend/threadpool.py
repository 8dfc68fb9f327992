"""Run one call per item of a batch side by side on a few threads, and wait for all of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class ThreadPool:
    """A small pool whose threads start on first use: building a worker starts no thread.

    Only the thread that owns it calls `map`, `run_all`, `start_all` and `close`.
    """

    def __init__(self, threads: int, name: str) -> None:
        self.threads = threads
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    def map(self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`work(item)` for every item, the results in order; re-raises the first item's error.

        Every call finishes, failed or not, before this returns or raises.
        """
        results: list[Any] = [None] * len(items)

        def run(position: int) -> None:
            results[position] = work(items[position])

        for error in self.run_all(run, range(len(items))):
            if error is not None:
                raise error
        return results

    def run_all(self, work: Callable[[T], None], items: Sequence[T]) -> list[BaseException | None]:
        """Call `work(item)` for every item; return what each call raised, None if nothing.

        No call is still running when this returns or raises (see `Running.wait`).
        """
        return self.start_all(work, items).wait()

    def start_all(self, work: Callable[[T], None], items: Sequence[T]) -> Running:
        """Start `work(item)` for every item and return at once; `wait()` on the result.

        A single item runs in the caller before this returns: one call gains nothing from a
        thread.
        """
        if len(items) <= 1 or self.threads <= 1:
            return Running(errors=[_run(work, item) for item in items])
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self._name)
        futures: list[Future[None]] = []
        try:
            for item in items:
                futures.append(self._executor.submit(work, item))
        except BaseException:
            Running(futures).cancel_and_wait()
            raise
        return Running(futures)

    def close(self) -> None:
        """Stop the threads, after any call still running."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


class Running:
    """Calls started by `ThreadPool.start_all`."""

    def __init__(
        self,
        futures: list[Future[None]] | None = None,
        errors: Sequence[BaseException | None] = (),
    ) -> None:
        self._futures = futures or []
        self._errors = list(errors)

    def wait(self) -> list[BaseException | None]:
        """Wait for every call; return what each raised, None if nothing, in order.

        No call is still running when this returns or raises: a BaseException raised in the
        calling thread meanwhile (a forced stop) cancels the calls not started yet and waits
        for those running (a request in flight cannot be taken back) before it propagates.
        """
        if not self._futures:
            return self._errors
        try:
            wait(self._futures)
        except BaseException:
            self.cancel_and_wait()
            raise
        return [future.exception() for future in self._futures]

    def cancel_and_wait(self) -> None:
        """Drop the calls not started yet and wait for those running."""
        for future in self._futures:
            future.cancel()
        wait(self._futures)


def _run(work: Callable[[T], None], item: T) -> BaseException | None:
    try:
        work(item)
    except Exception as error:
        return error
    return None
