"""Each measured figure: one function per figure, each starting what it needs and stopping it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tools.bench import payload, raw_queue
from tools.bench.cpu import Meter, own_cpu_s, session_of_port
from tools.bench.load import LoadPlan, LoadResult, run_plan
from tools.bench.services import start_backend, start_frontend, wait_for_workers, warm_frontend
from tools.bench.session import Run, Target
from tools.ingestion_server import IngestionServer

PUT_CEILING = "queue put (raw send_message)"
# Enough indices that a closed-loop run never runs out before its time is up.
UNBOUNDED = 10_000_000
DRAIN_TIMEOUT_S = 120.0
WARMUP_S = 1.0
# A paced run measures `load_factor` of the host's capacity only if the host kept it: the run's
# rate against the full load measured right after it must lie within this of `load_factor`.
# On a shared host that capacity moves by a third within a minute; 80% of a fast draw, paced
# while the host slows down, is overload, and its tail says nothing about the service.
LOAD_TOLERANCE = 0.1


@dataclass
class Figure:
    """One number of the run, its ceiling's name and everything measured with it."""

    name: str
    per_s: float
    ceiling: str | None = None
    ratio: float | None = None
    details: dict[str, float | int | str] = field(default_factory=dict)


def percentile_ms(latencies_s: list[float], fraction: float) -> float:
    """The `fraction` percentile of latencies, in milliseconds (nearest rank)."""
    if not latencies_s:
        return float("nan")
    ordered = sorted(latencies_s)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return round(ordered[rank] * 1000, 1)


def load_held(paced_per_s: float, capacity_per_s: float, load_factor: float) -> bool:
    """Whether a run paced at `paced_per_s` was at `load_factor` of the capacity seen after it."""
    if capacity_per_s <= 0:
        return False
    # The epsilon keeps the band's edges in it (0.7 - 0.8 is not quite -0.1 in floating point).
    return abs(paced_per_s / capacity_per_s - load_factor) <= LOAD_TOLERANCE + 1e-9


def capacity_check(
    paced_per_s: float, capacity_per_s: float, load_factor: float
) -> dict[str, float | int | str]:
    """A paced run's details against the full load measured after it.

    That rate, the share of it the run was paced at (NaN if nothing was answered), and whether
    that `held`.
    """
    return {
        "capacity_after_per_s": round(capacity_per_s, 1),
        "load_of_capacity": (
            round(paced_per_s / capacity_per_s, 3) if capacity_per_s > 0 else float("nan")
        ),
        "held": load_held(paced_per_s, capacity_per_s, load_factor),
    }


def latency_details(result: LoadResult) -> dict[str, float | int | str]:
    """Count, time and latency percentiles of a load result."""
    return {
        "requests": len(result.latencies_s),
        "errors": result.errors,
        "statuses": ",".join(f"{k}:{v}" for k, v in sorted(result.statuses.items())),
        "elapsed_s": round(result.elapsed_s, 2),
        "p50_ms": percentile_ms(result.latencies_s, 0.50),
        "p99_ms": percentile_ms(result.latencies_s, 0.99),
    }


def merged(results: list[LoadResult]) -> LoadResult:
    """One result from several processes' results."""
    total = LoadResult()
    for result in results:
        total.merge(result)
    return total


def put_ceiling(run: Run, target: Target) -> Figure:
    """Raw `send_message` from as many processes and threads as the frontend's load has."""
    config = run.config
    per_process = UNBOUNDED // config.client_processes
    base = run.indices(UNBOUNDED)

    def plans(start_at: float) -> list[raw_queue.PutPlan]:
        return [
            raw_queue.PutPlan(
                target.connection_string,
                target.queue,
                "ceiling",
                base + i * per_process,
                per_process,
                config.connections_per_worker,
                start_at,
                config.duration_s,
            )
            for i in range(config.client_processes)
        ]

    meter = Meter({"azurite": session_of_port(target.queue_port)}).start()
    result = merged(run.pool.run(raw_queue.put, plans))
    messages_per_s = len(result.latencies_s) / result.elapsed_s
    details = latency_details(result)
    details.update(meter.per_unit(len(result.latencies_s), clients=result.cpu_s))
    return Figure(PUT_CEILING, messages_per_s, details=details)


def http_load(
    run: Run,
    port: int,
    tag: str,
    rate_per_s: float | None,
    duration_s: float,
    count: int = UNBOUNDED,
    first: int | None = None,
    connections: int | None = None,
    fresh_connections: bool = False,
) -> LoadResult:
    """Signed deliveries from the load processes, closed loop or paced at `rate_per_s`.

    Each process runs `connections` threads (the config's connections per worker when
    omitted), each on one keep-alive connection, or a new one per delivery.
    """
    config = run.config
    processes = config.client_processes
    per_process = count // processes
    base = run.indices(count) if first is None else first

    def plans(start_at: float) -> list[LoadPlan]:
        return [
            LoadPlan(
                port,
                tag,
                base + i * per_process,
                per_process if i < processes - 1 else count - i * per_process,
                connections or config.connections_per_worker,
                start_at,
                duration_s,
                rate_per_s / processes if rate_per_s else None,
                fresh_connections,
            )
            for i in range(processes)
        ]

    return merged(run.pool.run(run_plan, plans))


def frontend(
    run: Run, target: Target, put: Figure, packing: bool = True, paced: bool = True
) -> list[Figure]:
    """Accepted deliveries per second at full load; with `paced`, latency at `load_factor` of it."""
    config = run.config
    service, port = start_frontend(
        run.workdir,
        target.connection_string,
        target.queue,
        config.frontend_workers,
        config.frontend_threads,
        packing,
    )
    try:
        warm_frontend(port, 20)
        warmup = http_load(run, port, "warmup", None, WARMUP_S)
        sessions = {"frontend": service.process.pid, "azurite": session_of_port(target.queue_port)}
        meter = Meter(sessions).start()
        full = http_load(run, port, "full", None, config.duration_s)
        full_cpu = meter.per_unit(full.statuses[202], clients=full.cpu_s)
        full_rate = full.accepted_per_s
        # Warm-up and full load only, so every trial's figure counts the same deliveries.
        messages = raw_queue.depth(target.connection_string, target.queue)
        off = "" if packing else ", packing off"
        load_name = f"frontend at {config.load_factor:.0%} load{off}"
        at_load = _paced(run, port, load_name, full_rate) if paced else None
    finally:
        service.stop()
    figures = [
        Figure(
            "frontend full load (202/s)" if packing else "frontend full load, packing off",
            full_rate,
            put.name,
            full_rate / put.per_s,
            latency_details(full),
        )
    ]
    figures[0].details.update(full_cpu)
    accepted = warmup.statuses[202] + full.statuses[202]
    figures[0].details["deliveries_per_message"] = round(accepted / max(messages, 1), 2)
    if at_load is not None:
        figures.append(at_load)
    return figures


def _paced(run: Run, port: int, name: str, full_rate: float) -> Figure:
    """Latency at `load_factor` of the full load, on a host that kept its capacity meanwhile.

    Each paced run is followed by a full-load run as long; if the paced rate was not within
    LOAD_TOLERANCE of `load_factor` of that one, the host's capacity moved, and the next attempt
    paces at `load_factor` of the newer reading. The last attempt is the figure, marked `held`
    or not; `attempts` says how many it took, `attempts_p99` each one's p99 and load. A host
    that answered nothing at full load is not paced again (a rate of 0 would be closed loop).
    """
    config = run.config
    attempt, reference = 0, full_rate
    seen: list[str] = []  # each attempt's p99 and load
    while True:
        attempt += 1
        paced_rate = config.load_factor * reference
        result = http_load(run, port, "paced", paced_rate, config.duration_s)
        capacity = http_load(run, port, "capacity", None, config.duration_s).accepted_per_s
        check = capacity_check(paced_rate, capacity, config.load_factor)
        load = f"{paced_rate / capacity:.2f}" if capacity > 0 else "?"
        seen.append(f"p99 {percentile_ms(result.latencies_s, 0.99)} ms at {load}")
        if check["held"] or attempt >= config.paced_attempts or capacity <= 0:
            break
        reference = capacity
    details = latency_details(result)
    details.update(
        check,
        target_per_s=round(paced_rate, 1),
        attempts=attempt,
        attempts_p99=", ".join(seen),
    )
    return Figure(name, result.accepted_per_s, details=details)


def fill(run: Run, target: Target, tag: str, pack: int = 1) -> None:
    """Put `depth` distinct envelopes on the benchmark queue, `pack` per message."""
    config = run.config
    processes = config.client_processes
    share = config.depth // processes
    base = run.indices(config.depth)

    def plans(start_at: float) -> list[raw_queue.PutPlan]:
        return [
            raw_queue.PutPlan(
                target.connection_string,
                target.queue,
                tag,
                base + i * share,
                share if i < processes - 1 else config.depth - i * share,
                config.connections_per_worker,
                start_at,
                3600.0,
                distinct=True,
                pack=pack,
            )
            for i in range(processes)
        ]

    run.pool.run(raw_queue.put, plans)


def drain_ceiling(run: Run, processes: int) -> Figure:
    """Raw receive-and-delete of `depth` messages by `processes` processes, fresh Azurite."""
    with run.fresh_queue() as target:
        fill(run, target, "drain")

        def plans(start_at: float) -> list[raw_queue.DrainPlan]:
            return [
                raw_queue.DrainPlan(target.connection_string, target.queue, start_at)
            ] * processes

        meter = Meter({"azurite": session_of_port(target.queue_port)}).start()
        results = run.pool.run(raw_queue.drain, plans)
        drained = sum(r.drained for r in results)
        cpu = meter.per_unit(drained, clients=sum(r.cpu_s for r in results))
    elapsed = max(r.elapsed_s for r in results)
    details: dict[str, float | int | str] = {
        "messages": drained,
        "elapsed_s": round(elapsed, 2),
        **cpu,
    }
    return Figure(f"queue drain (raw), {processes} proc", drained / elapsed, details=details)


def backend(
    run: Run, processes: int, ceiling: Figure | None, pack: int = 1, ledger: bool = True
) -> Figure:
    """`python -m backend` draining `depth` deliveries into the ingestion server, fresh Azurite.

    With `pack` > 1 the deliveries travel `pack` per message and the figure counts deliveries,
    without a ratio (as without a `ceiling`). `ledger=False` runs the pool without its
    idempotency ledger, to state the ledger's cost.
    """
    config = run.config
    expected = config.depth * payload.items_per_delivery()
    server = IngestionServer().start()
    try:
        with run.fresh_queue() as target:
            fill(run, target, f"backend{processes}x{pack}{'' if ledger else 'n'}", pack)
            service = start_backend(
                run.workdir,
                target.connection_string,
                target.queue,
                server.connection_string,
                processes,
                ledger,
            )
            meter = Meter(
                {"backend": service.process.pid, "azurite": session_of_port(target.queue_port)}
            )
            try:
                started = wait_for_workers(service, processes)
                meter.start()
                bench_cpu = own_cpu_s()
                finished = _wait_for_items(server, expected, DRAIN_TIMEOUT_S)
                cpu = meter.per_unit(config.depth, ingestion=own_cpu_s() - bench_cpu)
            finally:
                service.stop()
            left = raw_queue.depth(target.connection_string, target.queue)
    finally:
        server.stop()
    elapsed = finished - started
    rate = config.depth / elapsed
    details: dict[str, float | int | str] = {
        "messages": config.depth,
        "items": len(server.accepted),
        "left_in_queue": left,
        "elapsed_s": round(elapsed, 2),
        **cpu,
    }
    if pack > 1:
        details["deliveries_per_message"] = pack
        name = f"backend drain, {processes} proc, packs of {pack}"
        return Figure(name, rate, details=details)
    name = f"backend drain, {processes} proc" + ("" if ledger else ", ledger off")
    if ceiling is None:
        return Figure(name, rate, details=details)
    return Figure(name, rate, ceiling.name, rate / ceiling.per_s, details)


def _wait_for_items(server: IngestionServer, expected: int, timeout_s: float) -> float:
    """Poll until the server accepted `expected` items; the monotonic time it did."""
    deadline = time.monotonic() + timeout_s
    while len(server.accepted) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(server.accepted)} of {expected} items within {timeout_s:.0f} s"
            )
        time.sleep(0.005)
    return time.monotonic()
