"""Run one call per item of a batch side by side on a few threads, and wait for all of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


class ThreadPool:
    """A small pool whose threads start on first use: building a worker starts no thread.

    Only the thread that owns it calls `run_all` and `close`.
    """

    def __init__(self, threads: int, name: str) -> None:
        self.threads = threads
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    def run_all(self, work: Callable[[T], None], items: Sequence[T]) -> list[BaseException | None]:
        """Call `work(item)` for every item; return what each call raised, None if nothing.

        No call is still running when this returns or raises: a BaseException raised in the
        calling thread meanwhile (a forced stop) cancels the calls not started yet and waits
        for those running (a request in flight cannot be taken back) before it propagates.
        """
        if len(items) <= 1 or self.threads <= 1:
            return [_run(work, item) for item in items]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self._name)
        futures: list[Future[None]] = []
        try:
            for item in items:
                futures.append(self._executor.submit(work, item))
            wait(futures)
        except BaseException:
            for future in futures:
                future.cancel()
            wait(futures)
            raise
        return [future.exception() for future in futures]

    def close(self) -> None:
        """Stop the threads, after any call still running."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


def _run(work: Callable[[T], None], item: T) -> BaseException | None:
    try:
        work(item)
    except Exception as error:
        return error
    return None
