"""The soak figure: deliveries at a share of the measured maximum for a long while.

It states what a short figure cannot: the share answered 503 or too late (GitHub gives up
after 10 s), p99, deliveries lost (answered 202, not queued) or doubled (queued twice), and
whether memory stays flat: the resident memory of every process at the start, after the
warm-up and at the end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from common.azure_queue import AzureQueue
from common.envelope import decode_message
from common.queue import QueueError, QueueUnavailable
from common.settings import StorageSettings
from tools.bench import payload
from tools.bench.cpu import session_of_port
from tools.bench.figures import Figure, http_load, latency_details, merged
from tools.bench.load import LoadResult
from tools.bench.memory import children_of, rss_bytes
from tools.bench.raw_queue import depth
from tools.bench.services import start_frontend, warm_frontend
from tools.bench.session import Run, Target

# GitHub records a delivery as failed past this.
GITHUB_TIMEOUT_S = 10.0
# At most this share of the run warms up before the memory reading "after warm-up".
WARMUP_SHARE = 0.25
MAX_WARMUP_S = 240.0
_MB = 1024 * 1024
# Senders per load process, each opening a connection per delivery as GitHub does: a slow
# answer must not hold the next delivery back as it would on the benchmark's 8 keep-alive
# connections. 2 processes x 256 cover 80/s answered at the 5.5 s deadline.
SOAK_CONNECTIONS = 256
# Threads taking messages off the queue during the soak, and how long each stays theirs: a
# receive that failed on its way back hid its messages for that long, and they are counted
# once they show again.
DRAIN_THREADS = 2
DRAIN_VISIBILITY_S = 15
# How long the drain may take once the load has ended.
DRAIN_END_S = 120.0


def soak(run: Run, target: Target, rate_per_s: float) -> Figure:
    """Deliveries at `rate_per_s` for `soak_s`, every queued one counted as it is drained."""
    config = run.config
    service, port = start_frontend(
        run.workdir,
        target.connection_string,
        target.queue,
        config.frontend_workers,
        config.frontend_threads,
    )
    # Azurite runs in a session of its own, whose leader is its node process.
    azurite_pid = session_of_port(target.queue_port)
    memory: dict[str, str] = {}
    warmup_s = min(config.soak_s * WARMUP_SHARE, MAX_WARMUP_S)
    drainer = _Drainer(target)
    try:
        warm_frontend(port, 20)
        _wait_for_children(service.process.pid, config.frontend_workers)
        drainer.start()
        memory["rss_mb_start"] = _rss(service.process.pid, azurite_pid)
        warm = _paced(run, port, rate_per_s, warmup_s)
        memory["rss_mb_warm"] = _rss(service.process.pid, azurite_pid)
        rest = _paced(run, port, rate_per_s, config.soak_s - warmup_s)
        memory["rss_mb_end"] = _rss(service.process.pid, azurite_pid)
    finally:
        service.stop()
        queued = drainer.finish()
    result = merged([warm, rest])
    result.elapsed_s = warm.elapsed_s + rest.elapsed_s  # one after the other, not side by side
    accepted = {payload.job_id(index) for index in result.accepted_indices}
    refused = {payload.job_id(index) for index in result.sent_indices} - accepted
    late = sum(1 for latency in result.latencies_s if latency > GITHUB_TIMEOUT_S)
    answered = len(result.latencies_s) + result.errors
    # A late answer that was also a 503 counts twice: the share is an upper bound.
    failed = result.errors + len(result.latencies_s) - len(result.accepted_indices) + late
    details = latency_details(result)
    details.update(
        memory,
        minutes=round(config.soak_s / 60, 2),
        target_per_s=round(rate_per_s, 1),
        failed_share=round(failed / max(answered, 1), 4),
        late=late,
        lost=len(accepted - set(queued)),
        doubled=sum(1 for count in queued.values() if count > 1),
        refused_but_queued=len(refused & set(queued)),
    )
    load = f"{rate_per_s:.0f}/s" if config.soak_per_s else f"{config.load_factor:.0%} load"
    name = f"frontend soak at {load}"
    return Figure(name, len(result.accepted_indices) / max(result.elapsed_s, 1e-9), details=details)


def _paced(run: Run, port: int, rate_per_s: float, duration_s: float) -> LoadResult:
    count = int(rate_per_s * duration_s) + 100
    first = run.indices(count)
    return http_load(
        run, port, "soak", rate_per_s, duration_s, count, first, SOAK_CONNECTIONS, True
    )


class _Drainer:
    """Takes messages off the queue while the soak runs, as the backend would, counting jobs.

    Counting only at the end would read tens of thousands of messages from an emulator whose
    every call slows with its depth; drained as they come, the queue stays shallow.
    """

    def __init__(self, target: Target, threads: int = DRAIN_THREADS) -> None:
        self._target = target
        storage = StorageSettings(target.connection_string, None, target.queue)
        self._queue = AzureQueue(storage, connections=threads)
        self._queued: Counter[int] = Counter()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._drain, name="soak-drain", daemon=True)
            for _ in range(threads)
        ]

    def start(self) -> None:
        """Start draining."""
        for thread in self._threads:
            thread.start()

    def finish(self) -> Counter[int]:
        """Drain what is left, stop, and say how many times each job id was queued."""
        deadline = time.monotonic() + DRAIN_END_S
        # The message count includes hidden messages: wait until none is left at all.
        while depth(self._target.connection_string, self._target.queue) > 0:
            if time.monotonic() > deadline:
                break
            time.sleep(1.0)
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        self._queue.close()
        return self._queued

    def _drain(self) -> None:
        while True:
            try:
                messages = self._queue.receive(32, visibility_timeout_s=DRAIN_VISIBILITY_S)
            except QueueUnavailable:
                messages = []
            if not messages:
                if self._stop.is_set():
                    return
                time.sleep(0.2)
                continue
            for message in messages:
                self._count(message.id, message.content)
                try:
                    self._queue.delete(message)
                except QueueError:
                    pass  # counted once by its id; seen again it is not counted again

    def _count(self, message_id: str, content: str) -> None:
        with self._lock:
            if message_id in self._seen:
                return
            self._seen.add(message_id)
        jobs = [int(envelope.payload["workflow_job"]["id"]) for envelope in decode_message(content)]
        with self._lock:
            self._queued.update(jobs)


def _wait_for_children(pid: int, count: int, timeout_s: float = 20.0) -> None:
    """Wait until gunicorn's master has forked all its workers (it answers before that)."""
    deadline = time.monotonic() + timeout_s
    while len(children_of(pid)) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def _rss(frontend_pid: int, azurite_pid: int | None) -> str:
    """Resident MB of the gunicorn master, each worker, and Azurite: "master/w1/w2 az"."""
    workers = [rss_bytes(pid) // _MB for pid in children_of(frontend_pid)]
    parts = "/".join(str(mb) for mb in [rss_bytes(frontend_pid) // _MB, *workers])
    azurite = rss_bytes(azurite_pid) // _MB if azurite_pid else 0
    return f"{parts} az {azurite}"
