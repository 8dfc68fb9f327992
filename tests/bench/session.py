"""What every figure of one run shares: sizes, load processes, scratch folder and queues."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.azurite import Azurite
from tests.bench import raw_queue
from tests.bench.config import BenchConfig
from tests.bench.parallel import Pool


@dataclass(frozen=True)
class Target:
    """One queue on one Azurite."""

    connection_string: str
    queue: str


@dataclass
class Run:
    """One benchmark run; `fresh_queue()` gives each figure its queue (and Azurite)."""

    config: BenchConfig
    pool: Pool
    workdir: Path
    _shared: Azurite | None = None
    _names: Iterator[int] = field(default_factory=itertools.count)

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
