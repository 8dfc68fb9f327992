"""The benchmark's sizes, from command-line flags over `BENCH_*` environment variables."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

# Preset sizes; `default` takes a 2-core host about 10 minutes (3 trials of each figure with a
# ceiling), `quick` about 2 (a single trial), `tiny` seconds.
PRESETS: dict[str, dict[str, object]] = {
    "default": {
        "duration_s": 8.0,
        "depth": 1500,
        "e2e_deliveries": 1500,
        "trials": 3,
        "paced_attempts": 3,
        "soak_s": 60.0,
    },
    "quick": {
        "duration_s": 5.0,
        "depth": 1200,
        "e2e_deliveries": 600,
        "trials": 1,
        "paced_attempts": 2,
        "soak_s": 20.0,
    },
    "tiny": {
        "trials": 1,
        "paced_attempts": 1,
        "duration_s": 1.0,
        "depth": 100,
        "e2e_deliveries": 100,
        "shared_azurite": True,
        "packed_drain": 0,
        "soak_s": 0.0,
    },
}


@dataclass(frozen=True)
class BenchConfig:
    """Every size of one run; each field is also `BENCH_<FIELD>` in the environment."""

    duration_s: float = 8.0
    depth: int = 1500
    trials: int = 3  # of each figure measured against a ceiling; the median is reported
    e2e_deliveries: int = 1500
    frontend_workers: int = 2
    frontend_threads: int = 8
    connections_per_worker: int = 8
    backend_processes: tuple[int, ...] = (1, 2)
    load_factor: float = 0.8
    # Paced runs per trial at most: one whose load, against the full load measured right after
    # it, left `load_factor` +- LOAD_TOLERANCE (the host's capacity moved) is run again.
    paced_attempts: int = 3
    packed_drain: int = 8  # deliveries per message of the packed drain figure; 0: no figure
    # The soak figure's length (`--soak-s 900`: the 15 minutes of docs/benchmark.md); 0: none.
    soak_s: float = 60.0
    soak_per_s: float = 0.0  # the soak's pace; 0: `load_factor` x a full load just before it
    shared_azurite: bool = False
    output: Path = Path("var") / "bench.json"
    preset: str = "default"

    @property
    def client_processes(self) -> int:
        """Load generator processes: as many as the frontend has workers."""
        return self.frontend_workers

    @property
    def concurrency(self) -> int:
        """Requests in flight at full load, the same for the ceiling and the frontend."""
        return self.frontend_workers * self.connections_per_worker


def _parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


def _from_text(name: str, text: str) -> object:
    kind = {f.name: f.type for f in fields(BenchConfig)}[name]
    if kind in ("float",):
        return float(text)
    if kind in ("int",):
        return int(text)
    if kind == "bool":
        return text.strip().lower() in {"1", "true", "yes", "on"}
    if kind.startswith("tuple"):
        return _parse_ints(text)
    if kind == "Path":
        return Path(text)
    return text


def load_config(
    argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ
) -> BenchConfig:
    """Build the config: a preset, then `BENCH_*` variables, then explicit flags."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--quick", action="store_const", const="quick", dest="preset")
    parser.add_argument("--tiny", action="store_const", const="tiny", dest="preset")
    for item in fields(BenchConfig):
        if item.name != "preset":
            flag = "--" + item.name.replace("_", "-")
            parser.add_argument(
                flag, dest=item.name, default=None, help=f"(BENCH_{item.name.upper()})"
            )
    args = parser.parse_args(argv)
    preset = args.preset or env.get("BENCH_PRESET", "default")
    if preset not in PRESETS:
        parser.error(f"unknown preset {preset!r}: one of {', '.join(PRESETS)}")
    values: dict[str, object] = {"preset": preset, **PRESETS[preset]}
    for item in fields(BenchConfig):
        raw = getattr(args, item.name, None) or env.get(f"BENCH_{item.name.upper()}")
        if raw is not None and item.name != "preset":
            values[item.name] = _from_text(item.name, str(raw))
    config = replace(BenchConfig(), **values)  # type: ignore[arg-type]
    if config.trials < 1:
        parser.error(f"--trials must be at least 1, not {config.trials}")
    if config.paced_attempts < 1:
        parser.error(f"--paced-attempts must be at least 1, not {config.paced_attempts}")
    return config
