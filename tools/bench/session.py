"""What every figure of one run shares: sizes, load processes, scratch folder and queues."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tools.azurite import Azurite
from tools.bench import raw_queue
from tools.bench.config import BenchConfig
from tools.bench.parallel import Pool


@dataclass(frozen=True)
class Target:
    """One queue on one Azurite."""

    connection_string: str
    queue: str

    @property
    def queue_port(self) -> int:
        """The emulator's queue port, read from the connection string."""
        endpoint = self.connection_string.split("QueueEndpoint=", 1)[1]
        return int(endpoint.split(":")[2].split("/")[0])


@dataclass
class Run:
    """One benchmark run; `fresh_queue()` gives each figure its queue (and Azurite)."""

    config: BenchConfig
    pool: Pool
    workdir: Path
    _shared: Azurite | None = None
    _names: Iterator[int] = field(default_factory=itertools.count)
    _next_index: int = 0

    def indices(self, count: int) -> int:
        """The first of `count` delivery indices no other figure of this run uses.

        Every figure needs deliveries of its own: with the idempotency ledger in the path, a
        job id seen before is skipped as already exported.
        """
        first, self._next_index = self._next_index, self._next_index + count
        return first

    @contextmanager
    def fresh_queue(self) -> Iterator[Target]:
        """A new queue on a new Azurite, or on the run's one Azurite with `--shared-azurite`.

        A fresh emulator matters at depth: its receive slows as its queue deepens and ages.
        """
        name = f"bench-{next(self._names)}"
        if self.config.shared_azurite:
            if self._shared is None:
                self._shared = Azurite().start()
            target = Target(self._shared.connection_string, name)
            raw_queue.create(target.connection_string, target.queue)
            yield target
            return
        azurite = Azurite().start()
        try:
            target = Target(azurite.connection_string, name)
            raw_queue.create(target.connection_string, target.queue)
            yield target
        finally:
            azurite.stop()

    def close(self) -> None:
        """Stop the shared Azurite, if one was started."""
        if self._shared is not None:
            self._shared.stop()
            self._shared = None
