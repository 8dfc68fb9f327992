"""The HTTP load generator: processes of threads, each thread one keep-alive connection.

Closed loop (`rate_per_s=None`): every connection sends its next delivery as soon as the last
one was answered. Open loop: deliveries are due at a fixed pace and latency counts from the due
time, so a slow server is charged for the queueing it causes (no coordinated omission).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from tools.bench import payload
from tools.bench.cpu import own_cpu_s

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LoadPlan:
    """What one load process sends: indices `first`..`first+count-1` to 127.0.0.1:`port`."""

    port: int
    tag: str
    first: int
    count: int
    connections: int
    start_at: float  # wall clock (time.time()) shared by every process
    duration_s: float
    rate_per_s: float | None = None
    fresh_connections: bool = False  # a new connection per delivery, as GitHub opens


@dataclass
class LoadResult:
    """What one or more load processes saw."""

    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    sent_indices: list[int] = field(default_factory=list)
    accepted_indices: list[int] = field(default_factory=list)  # answered 202
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # CPU the load processes themselves spent

    @property
    def accepted_per_s(self) -> float:
        """Deliveries answered 202 per second; 0 for a run that took no time."""
        return self.statuses[202] / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def merge(self, other: LoadResult) -> None:
        """Add another process's result (elapsed is the longest)."""
        self.latencies_s += other.latencies_s
        self.statuses.update(other.statuses)
        self.errors += other.errors
        self.sent_indices += other.sent_indices
        self.accepted_indices += other.accepted_indices
        self.elapsed_s = max(self.elapsed_s, other.elapsed_s)
        self.cpu_s += other.cpu_s


class _Cursor:
    """Hands out the plan's indices to threads, one at a time, until count or deadline."""

    def __init__(self, plan: LoadPlan, started: float) -> None:
        self._plan = plan
        self._next = 0
        self._lock = threading.Lock()
        self._started = started
        self._deadline = started + plan.duration_s

    def take(self) -> tuple[int, float] | None:
        """The next index and the monotonic time it is due; None when the plan is done."""
        with self._lock:
            if self._next >= self._plan.count:
                return None
            position = self._next
            self._next += 1
        rate = self._plan.rate_per_s
        due = self._started + position / rate if rate else time.monotonic()
        if due >= self._deadline:
            return None
        return self._plan.first + position, due


def _connection_loop(
    plan: LoadPlan, cursor: _Cursor, result: LoadResult, lock: threading.Lock
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", plan.port, timeout=CONNECT_TIMEOUT_S)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    sent: list[int] = []
    accepted: list[int] = []
    errors = 0
    try:
        while (taken := cursor.take()) is not None:
            index, due = taken
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data = payload.body(index)
            headers = payload.headers(plan.tag, index, data)
            try:
                connection.request("POST", "/webhook", body=data, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                continue
            if plan.fresh_connections:
                connection.close()  # http.client opens a new one for the next request
            latencies.append(time.monotonic() - due)
            statuses[response.status] += 1
            sent.append(index)
            if response.status == 202:
                accepted.append(index)
    finally:
        connection.close()
        with lock:
            result.latencies_s += latencies
            result.statuses.update(statuses)
            result.errors += errors
            result.sent_indices += sent
            result.accepted_indices += accepted


def run_plan(plan: LoadPlan) -> LoadResult:
    """Run one load process's plan (the target of each load process)."""
    result = LoadResult()
    lock = threading.Lock()
    pause = plan.start_at - time.time()
    if pause > 0:
        time.sleep(pause)
    started, cpu_before = time.monotonic(), own_cpu_s()
    cursor = _Cursor(plan, started)
    threads = [
        threading.Thread(target=_connection_loop, args=(plan, cursor, result, lock), daemon=True)
        for _ in range(plan.connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed_s = time.monotonic() - started
    result.cpu_s = own_cpu_s() - cpu_before
    return result
