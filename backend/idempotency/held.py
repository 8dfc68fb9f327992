"""The ETags of this process's live claims: complete and abandon write them without a read."""

from __future__ import annotations

import threading

# Claims never completed nor abandoned (a worker killed mid-batch) would pile up; past this
# many the oldest are dropped, and their keys are read before they are written, as without.
MAX_HELD_ETAGS = 10_000


class HeldEtags:
    """The ETag each owner's claim of each key got, shared by the ledger's threads."""

    def __init__(self, limit: int = MAX_HELD_ETAGS) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._etags: dict[tuple[str, str], str] = {}

    def remember(self, owner: str, keys: list[str], etags: list[str]) -> None:
        """Hold the ETags `owner`'s claim of `keys` got, dropping the oldest past the limit."""
        with self._lock:
            for key, etag in zip(keys, etags, strict=True):
                self._etags[(owner, key)] = etag
            while len(self._etags) > self._limit:
                del self._etags[next(iter(self._etags))]

    def of(self, owner: str, keys: list[str]) -> list[str] | None:
        """The ETags of `owner`'s claims of `keys`, in order; None unless every one is held."""
        with self._lock:
            etags = [self._etags.get((owner, key)) for key in keys]
        return None if None in etags else [etag for etag in etags if etag is not None]

    def forget(self, owner: str, keys: list[str]) -> None:
        """Drop what is held for `owner`'s `keys`."""
        with self._lock:
            for key in keys:
                self._etags.pop((owner, key), None)
