"""Capped exponential backoff that remembers whether the thing it guards is failing."""

from __future__ import annotations


class Backoff:
    """Delays of `initial_s`, doubling up to `cap_s`; `reset()` on success starts over."""

    def __init__(self, initial_s: float = 0.5, cap_s: float = 30.0) -> None:
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.failures = 0

    @property
    def is_failing(self) -> bool:
        """True after a failure and until the next success."""
        return self.failures > 0

    def next_delay_s(self, at_least_s: float = 0.0) -> float:
        """Count one more failure and return how long to wait before the next try."""
        delay = min(self.cap_s, self.initial_s * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return min(self.cap_s, max(delay, at_least_s))

    def reset(self) -> None:
        """Record a success."""
        self.failures = 0
