"""The ceilings: `send_message` and receive-and-delete straight against Azurite, no product code."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from azure.storage.queue import QueueClient

from tools.bench import payload
from tools.bench.cpu import own_cpu_s
from tools.bench.load import LoadResult

VISIBILITY_TIMEOUT_S = 300
MAX_MESSAGES = 32
# Distinct envelopes a put-ceiling process cycles through (all the same size).
CYCLE = 64


@dataclass(frozen=True)
class PutPlan:
    """One sending process: `count` messages (or until `duration_s`) on `threads` threads."""

    connection_string: str
    queue_name: str
    tag: str
    first: int
    count: int
    threads: int
    start_at: float
    duration_s: float
    distinct: bool = False  # one envelope per index (to fill a queue) or a cycle of CYCLE
    pack: int = 1  # deliveries per message, in the product's pack format when more than one


@dataclass(frozen=True)
class DrainPlan:
    """One draining process: receive 32, delete each, until the queue answers empty."""

    connection_string: str
    queue_name: str
    start_at: float


@dataclass(frozen=True)
class DrainResult:
    """Messages one drain process deleted and how long it took."""

    drained: int
    elapsed_s: float
    cpu_s: float


def _client(connection_string: str, queue_name: str) -> QueueClient:
    return QueueClient.from_connection_string(connection_string, queue_name)


def create(connection_string: str, queue_name: str) -> None:
    """Create a queue."""
    with _client(connection_string, queue_name) as client:
        client.create_queue()


def depth(connection_string: str, queue_name: str) -> int:
    """Approximate message count of a queue."""
    with _client(connection_string, queue_name) as client:
        return int(client.get_queue_properties().approximate_message_count or 0)


def put(plan: PutPlan) -> LoadResult:
    """Send the plan's messages from `threads` threads sharing one client, as a frontend does."""
    if plan.distinct:
        texts = [payload.envelope_text(plan.tag, plan.first + i) for i in range(plan.count)]
        if plan.pack > 1:
            texts = [
                payload.pack_of(texts[i : i + plan.pack]) for i in range(0, len(texts), plan.pack)
            ]
    else:
        texts = [payload.envelope_text(plan.tag, plan.first + i) for i in range(CYCLE)]
    client = _client(plan.connection_string, plan.queue_name)
    result = LoadResult()
    lock = threading.Lock()
    positions = iter(range(len(texts) if plan.distinct else plan.count))

    def sender() -> None:
        latencies: list[float] = []
        while time.monotonic() < deadline:
            with lock:
                position = next(positions, None)
            if position is None:
                break
            begun = time.monotonic()
            client.send_message(texts[position % len(texts)])
            latencies.append(time.monotonic() - begun)
        with lock:
            result.latencies_s += latencies
            result.statuses[201] += len(latencies)

    pause = plan.start_at - time.time()
    if pause > 0:
        time.sleep(pause)
    started, cpu_before = time.monotonic(), own_cpu_s()
    deadline = started + plan.duration_s
    threads = [threading.Thread(target=sender, daemon=True) for _ in range(plan.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.elapsed_s = time.monotonic() - started
    result.cpu_s = own_cpu_s() - cpu_before
    client.close()
    return result


def drain(plan: DrainPlan) -> DrainResult:
    """Receive and delete until the queue is empty; the raw cost the backend pays per message."""
    client = _client(plan.connection_string, plan.queue_name)
    pause = plan.start_at - time.time()
    if pause > 0:
        time.sleep(pause)
    started, cpu_before = time.monotonic(), own_cpu_s()
    drained = 0
    while True:
        pages = client.receive_messages(
            messages_per_page=MAX_MESSAGES,
            max_messages=MAX_MESSAGES,
            visibility_timeout=VISIBILITY_TIMEOUT_S,
        ).by_page()
        batch = list(next(pages, []))
        if not batch:
            break
        for message in batch:
            client.delete_message(message.id, message.pop_receipt)
        drained += len(batch)
    elapsed = time.monotonic() - started
    client.close()
    return DrainResult(drained, elapsed, own_cpu_s() - cpu_before)
