"""The run's table on stdout and the same as JSON, with the machine and versions it ran on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tools.azurite import azurite_binary
from tools.bench.config import BenchConfig
from tools.bench.figures import Figure

PACKAGES = (
    "flask",
    "werkzeug",
    "gunicorn",
    "azure-storage-queue",
    "azure-core",
    "requests",
    "opencensus-ext-azure",
)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def azurite_version() -> str:
    """The installed Azurite's version."""
    try:
        done = subprocess.run(
            [str(azurite_binary()), "--version"], capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return "unknown"


def environment() -> dict[str, Any]:
    """Versions, CPU and time of this run."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "packages": versions,
        "azurite": azurite_version(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
    }


def table(figures: list[Figure]) -> str:
    """The figures as a fixed-width table."""
    header = f"{'figure':<38} {'per s':>9} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7}  vs"
    lines = [header, "-" * len(header)]
    for figure in figures:
        ratio = f"{figure.ratio:.2f}" if figure.ratio is not None else ""
        p50 = figure.details.get("p50_ms", "")
        p99 = figure.details.get("p99_ms", "")
        lines.append(
            f"{figure.name:<38} {figure.per_s:>9.1f} {ratio:>6} {p50!s:>7} {p99!s:>7}  "
            f"{figure.ceiling or ''}"
        )
    return "\n".join(lines)


def write_json(
    path: Path, config: BenchConfig, figures: list[Figure], extra: dict[str, Any]
) -> None:
    """Write the run's figures, ratios, config and environment to `path`."""
    document = {
        "environment": environment(),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "figures": [
            {
                **asdict(figure),
                "per_s": round(figure.per_s, 1),
                "ratio": None if figure.ratio is None else round(figure.ratio, 3),
            }
            for figure in figures
        ],
        **extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
