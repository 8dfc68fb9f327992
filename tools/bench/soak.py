"""The soak figure: deliveries at a share of the measured maximum for a long while.

It states what a short figure cannot: the share answered 503 or too late (GitHub gives up
after 10 s), p99, deliveries lost (answered 202, not queued) or doubled (queued twice), and
whether memory stays flat: the resident memory of every process at the start, after the
warm-up and at the end.
"""

from __future__ import annotations

import time
from collections import Counter

from common.azure_queue import AzureQueue
from common.envelope import decode_message
from common.settings import StorageSettings
from tools.bench import payload, raw_queue
from tools.bench.cpu import session_of_port
from tools.bench.figures import (
    WARMUP_S,
    Figure,
    capacity_check,
    http_load,
    latency_details,
    merged,
)
from tools.bench.load import LoadResult
from tools.bench.memory import children_of, rss_bytes
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
# How long a counted message stays hidden: longer than the whole count takes.
COUNT_VISIBILITY_S = 3600


def soak(run: Run, target: Target, rate_per_s: float | None = None) -> Figure:
    """Deliveries at `rate_per_s` for `soak_s`, then every queued one counted.

    Without a rate, the soak runs at `load_factor` of a full-load run just before it: the
    trials' full load was measured minutes earlier, and on a shared host 80% of it may be past
    what the host takes by the time the soak starts. A full-load run after the soak then says
    whether the host kept that capacity (`held`, as for the paced figures). Both runs use a
    frontend and a queue of their own on the same Azurite, so the soak's frontend starts
    fresh for its memory readings and its queue holds only its own deliveries.
    """
    config = run.config
    capacity: dict[str, float] = {}
    if rate_per_s is None:
        capacity["capacity_before_per_s"] = _capacity(run, target, "before")
        if capacity["capacity_before_per_s"] <= 0:
            raise RuntimeError("the frontend answered no delivery at full load before the soak")
        rate_per_s = config.load_factor * capacity["capacity_before_per_s"]
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
    try:
        warm_frontend(port, 20)
        _wait_for_children(service.process.pid, config.frontend_workers)
        memory["rss_mb_start"] = _rss(service.process.pid, azurite_pid)
        warm = _send_at(run, port, rate_per_s, warmup_s)
        memory["rss_mb_warm"] = _rss(service.process.pid, azurite_pid)
        rest = _send_at(run, port, rate_per_s, config.soak_s - warmup_s)
        memory["rss_mb_end"] = _rss(service.process.pid, azurite_pid)
    finally:
        service.stop()
    if capacity:
        capacity["capacity_after_per_s"] = _capacity(run, target, "after")
    # Counted after the load, not during it: draining meanwhile made Azurite stall puts for
    # seconds, and 17-22% of deliveries were answered 503 for the emulator's sake.
    queued = _queued_job_ids(target)
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
    if capacity:
        details["capacity_before_per_s"] = round(capacity["capacity_before_per_s"], 1)
        after = capacity["capacity_after_per_s"]
        details.update(capacity_check(rate_per_s, after, config.load_factor))
    load = f"{rate_per_s:.0f}/s" if config.soak_per_s else f"{config.load_factor:.0%} load"
    name = f"frontend soak at {load}"
    return Figure(name, len(result.accepted_indices) / max(result.elapsed_s, 1e-9), details=details)


def _capacity(run: Run, target: Target, when: str) -> float:
    """Deliveries answered 202 per second at full load, closed loop, as the frontend figure.

    On a frontend and a queue of their own (`<queue>-capacity-<when>`) on the soak's Azurite.
    """
    config = run.config
    queue = f"{target.queue}-capacity-{when}"
    raw_queue.create(target.connection_string, queue)
    service, port = start_frontend(
        run.workdir,
        target.connection_string,
        queue,
        config.frontend_workers,
        config.frontend_threads,
    )
    try:
        warm_frontend(port, 20)
        http_load(run, port, "soak-warmup", None, WARMUP_S)
        result = http_load(run, port, "soak-capacity", None, config.duration_s)
    finally:
        service.stop()
    return result.accepted_per_s


def _send_at(run: Run, port: int, rate_per_s: float, duration_s: float) -> LoadResult:
    """The soak's own deliveries at `rate_per_s`, each on a new connection."""
    count = int(rate_per_s * duration_s) + 100
    first = run.indices(count)
    return http_load(
        run, port, "soak", rate_per_s, duration_s, count, first, SOAK_CONNECTIONS, True
    )


def _queued_job_ids(target: Target) -> Counter[int]:
    """How many times each job id was queued, from every message on the queue.

    Read without deleting: a delete per message more than doubled the emulator's calls, and
    its every call slows with the messages it holds (24,000 took 6 minutes to read).
    """
    queue = AzureQueue(StorageSettings(target.connection_string, None, target.queue))
    queued: Counter[int] = Counter()
    try:
        while messages := queue.receive(32, visibility_timeout_s=COUNT_VISIBILITY_S):
            for message in messages:
                for envelope in decode_message(message.content):
                    queued[int(envelope.payload["workflow_job"]["id"])] += 1
    finally:
        queue.close()
    return queued


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
