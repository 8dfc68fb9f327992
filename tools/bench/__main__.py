"""`python -m tools.bench [--quick|--tiny] [--duration-s 10 --soak-s 900 ...]`: run, print, save."""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

from tools.bench import e2e, figures
from tools.bench.config import load_config
from tools.bench.figures import Figure
from tools.bench.parallel import Pool
from tools.bench.report import table, write_json
from tools.bench.session import Run
from tools.bench.soak import soak
from tools.bench.trials import combine, combine_each, combine_latency

log = logging.getLogger("bench")


def measure(run: Run) -> list[Figure]:
    """Measure every figure in order, each from its own fresh Azurite where it matters.

    A figure with a ceiling is measured in `trials` trials, each starting with its own ceiling,
    and reported as the median (see `tools/bench/trials.py`); each trial's paced figures run at
    `load_factor` of that trial's full load and are reported by their median p99.
    """
    config = run.config
    puts: list[Figure] = []
    full: dict[bool, list[Figure]] = {True: [], False: []}
    paced: dict[bool, list[Figure]] = {True: [], False: []}
    for trial in range(config.trials):
        with run.fresh_queue() as target:
            log.info(
                "put ceiling (trial %d of %d): %d processes x %d threads",
                trial + 1,
                config.trials,
                config.client_processes,
                config.connections_per_worker,
            )
            puts.append(figures.put_ceiling(run, target))
        for packing in (True, False):
            with run.fresh_queue() as target:
                log.info(
                    "frontend (packing %s, trial %d of %d): full load, then %.0f%% of it",
                    "on" if packing else "off",
                    trial + 1,
                    config.trials,
                    100 * config.load_factor,
                )
                first, *rest = figures.frontend(run, target, puts[-1], packing)
            full[packing].append(first)
            paced[packing] += rest
    results = [combine(puts)]
    for packing in (True, False):
        results += [combine(full[packing]), combine_latency(paced[packing])]
    if config.soak_s > 0:
        if config.soak_per_s:
            log.info("frontend soak: %.0f s at %.0f/s", config.soak_s, config.soak_per_s)
        else:
            share = 100 * config.load_factor
            log.info("frontend soak: %.0f s at %.0f%% of a full load first", config.soak_s, share)
        with run.fresh_queue() as target:
            results.append(soak(run, target, config.soak_per_s or None))
    results += drains(run)
    if config.packed_drain > 1:
        processes = max(config.backend_processes)
        log.info("backend with %d worker(s), %d deliveries/message", processes, config.packed_drain)
        results.append(figures.backend(run, processes, None, config.packed_drain))
    log.info("end to end: %d deliveries", config.e2e_deliveries)
    results.append(e2e.end_to_end(run))
    return results


def drains(run: Run) -> list[Figure]:
    """Per trial, each process count's drain ceiling and backend; the last also without ledger."""
    config = run.config
    results: list[Figure] = []
    last = config.backend_processes[-1]
    for processes in config.backend_processes:
        trials: list[list[Figure]] = []
        for trial in range(config.trials):
            log.info(
                "backend with %d worker process(es) and its drain ceiling (trial %d of %d)%s",
                processes,
                trial + 1,
                config.trials,
                ", then without its ledger" if processes == last else "",
            )
            ceiling = figures.drain_ceiling(run, processes)
            measured = [ceiling, figures.backend(run, processes, ceiling)]
            if processes == last:
                # What deduplication costs: the same pool without its ledger.
                measured.append(figures.backend(run, processes, ceiling, ledger=False))
            trials.append(measured)
        results += combine_each(trials)
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
