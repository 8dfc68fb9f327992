"""`python -m tests.bench [--quick|--tiny] [--duration-s 10 ...]`: run every figure, print, save."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

from tests.bench import e2e, figures
from tests.bench.config import load_config
from tests.bench.figures import Figure
from tests.bench.parallel import Pool
from tests.bench.report import table, write_json
from tests.bench.session import Run

log = logging.getLogger("bench")


def measure(run: Run) -> list[Figure]:
    """Measure every figure in order, each from its own fresh Azurite where it matters."""
    config = run.config
    results: list[Figure] = []
    with run.fresh_queue() as target:
        log.info(
            "put ceiling: %d processes x %d threads",
            config.client_processes,
            config.connections_per_worker,
        )
        put = figures.put_ceiling(run, target)
        results.append(put)
    for packing in (True, False):
        with run.fresh_queue() as target:
            log.info(
                "frontend (packing %s): full load, then %.0f%% of it",
                "on" if packing else "off",
                config.load_factor * 100,
            )
            results += figures.frontend(run, target, put, packing)
    for processes in config.backend_processes:
        log.info("backend with %d worker process(es) and its drain ceiling", processes)
        ceiling = figures.drain_ceiling(run, processes)
        results += [ceiling, figures.backend(run, processes, ceiling)]
    # The last process count again, without the ledger: what deduplication costs.
    log.info("backend with %d worker(s) without its ledger", processes)
    results.append(figures.backend(run, processes, ceiling, ledger=False))
    if config.packed_drain > 1:
        processes = max(config.backend_processes)
        log.info("backend with %d worker(s), %d deliveries/message", processes, config.packed_drain)
        results.append(figures.backend(run, processes, results[-1], config.packed_drain))
    log.info("end to end: %d deliveries", config.e2e_deliveries)
    results.append(e2e.end_to_end(run))
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its JSON; exit 0 unless it could not run."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s bench %(message)s", stream=sys.stderr
    )
    # The Azure SDK logs every request at INFO; keep the benchmark's own lines readable.
    logging.getLogger("azure").setLevel(logging.WARNING)
    config = load_config(argv)
    began = time.monotonic()
    size = max(config.client_processes, *config.backend_processes)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch, Pool(size) as pool:
        run = Run(config, pool, Path(scratch))
        try:
            results = measure(run)
        finally:
            run.close()
    total_s = time.monotonic() - began
    print(table(results))
    write_json(config.output, config, results, {"total_s": round(total_s, 1)})
    print(f"\n{len(results)} figures in {total_s:.0f} s; written to {config.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
