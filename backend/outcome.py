"""The fate of one queue message: done, retry or poison, with the reason that decided it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    """How a received message is settled."""

    DONE = "done"  # telemetry accepted (or nothing to send): delete the message
    RETRY = "retry"  # a dependency failed transiently: leave the message, it reappears
    POISON = "poison"  # cannot ever succeed: copy to `<queue>-poison` with the reason, delete


@dataclass(frozen=True)
class Verdict:
    """An outcome and the one-line reason logged (and, for poison, stored) with it."""

    outcome: Outcome
    reason: str


class TransientError(Exception):
    """A dependency of message handling (sink, ledger) failed and may recover; hold the batch."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
