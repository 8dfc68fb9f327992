"""End to end: N signed deliveries into the frontend, N x items out of the backend, counted."""

from __future__ import annotations

import time

from tools.bench import payload
from tools.bench.figures import Figure, http_load, latency_details
from tools.bench.services import start_backend, start_frontend, wait_for_workers, warm_frontend
from tools.bench.session import Run
from tools.ingestion_server import IngestionServer

# How long the count may stand still after the load before the run is called finished.
SETTLE_S = 10.0
LOAD_LIMIT_S = 600.0


def end_to_end(run: Run) -> Figure:
    """Send `e2e_deliveries` through frontend and backend; count lost and doubled items."""
    config, workdir = run.config, run.workdir
    processes = max(config.backend_processes)
    expected_items = config.e2e_deliveries * payload.items_per_delivery()
    server = IngestionServer().start()
    try:
        with run.fresh_queue() as target:
            backend = start_backend(
                workdir, target.connection_string, target.queue, server.connection_string, processes
            )
            frontend, port = start_frontend(
                workdir,
                target.connection_string,
                target.queue,
                config.frontend_workers,
                config.frontend_threads,
            )
            try:
                wait_for_workers(backend, processes)
                warm_frontend(port, 20)
                started = time.monotonic()
                first = run.indices(config.e2e_deliveries)
                load = http_load(
                    run, port, "e2e", None, LOAD_LIMIT_S, count=config.e2e_deliveries, first=first
                )
                finished = _wait_until_settled(server, expected_items)
            finally:
                frontend.stop()
                backend.stop()
    finally:
        server.stop()
    counts = payload.count_by_job(server.events())
    lost, doubled = payload.lost_and_doubled(counts, range(first, first + config.e2e_deliveries))
    elapsed = finished - started
    details = latency_details(load)
    details.update(
        deliveries=config.e2e_deliveries,
        accepted=load.statuses[202],
        items_expected=expected_items,
        items_received=sum(counts.values()),
        lost=lost,
        doubled=doubled,
        elapsed_s=round(elapsed, 2),
    )
    return Figure("end to end (deliveries/s)", config.e2e_deliveries / elapsed, details=details)


def _wait_until_settled(server: IngestionServer, expected: int) -> float:
    """Wait for `expected` items, or until none arrived for SETTLE_S; the time of the last."""
    last_count, last_change = -1, time.monotonic()
    while True:
        count = len(server.accepted)
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        if count >= expected:
            # A little longer, so a doubled item arriving late is still counted.
            time.sleep(0.5)
            return now
        if now - last_change > SETTLE_S:
            return last_change
        time.sleep(0.005)
