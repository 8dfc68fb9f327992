"""A pool of spawned processes, kept warm, that start each round of plans at the same moment."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

P = TypeVar("P")
R = TypeVar("R")

# Time between handing out the plans and their common start, for every process to take one.
START_MARGIN_S = 0.3


def _ready() -> None:
    """Import what the plans run, and stay busy long enough that each process gets one call."""
    import tools.bench.load  # noqa: F401
    import tools.bench.raw_queue  # noqa: F401

    time.sleep(0.3)


class Pool:
    """`size` worker processes; each round runs one plan per process, all starting together."""

    def __init__(self, size: int) -> None:
        self.size = size
        context = multiprocessing.get_context("spawn")
        self._executor = ProcessPoolExecutor(max_workers=size, mp_context=context)
        for warm in [self._executor.submit(_ready) for _ in range(size)]:
            warm.result()

    def run(self, target: Callable[[P], R], plans_at: Callable[[float], Sequence[P]]) -> list[R]:
        """Run `target` once per plan, in parallel; `plans_at(start_at)` builds the plans.

        A plan blocks its process until `start_at` (wall clock), so no process takes two.
        """
        plans = plans_at(time.time() + START_MARGIN_S)
        if len(plans) > self.size:
            raise ValueError(f"{len(plans)} plans for a pool of {self.size} processes")
        futures = [self._executor.submit(target, plan) for plan in plans]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the processes."""
        self._executor.shutdown(cancel_futures=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
