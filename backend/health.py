"""The backend's liveness: the supervisor touches a heartbeat file while its workers run.

`python -m backend.health` is the container health check: it exits 0 when the file was touched
within `STALE_AFTER_S`, 1 otherwise, with no HTTP server and no extra package.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from common.settings import EnvReader

STALE_AFTER_S = 60.0


def heartbeat_path(env: Mapping[str, str] = os.environ) -> Path:
    """Where the heartbeat lives: `BACKEND_HEARTBEAT_FILE`, else a file in the temp folder."""
    default = Path(tempfile.gettempdir()) / "github-telemetry-backend.heartbeat"
    return EnvReader(env).path("BACKEND_HEARTBEAT_FILE", default)


def beat(path: Path) -> None:
    """Touch the heartbeat file, creating it if needed."""
    try:
        path.touch()
    except OSError:
        # A read-only or missing folder must not stop the pool; the health check will tell.
        pass


def is_fresh(path: Path, now: float, stale_after_s: float = STALE_AFTER_S) -> bool:
    """True when the heartbeat was touched less than `stale_after_s` ago."""
    try:
        return now - path.stat().st_mtime < stale_after_s
    except OSError:
        return False


def main() -> int:
    """Exit 0 when the backend's heartbeat is fresh."""
    path = heartbeat_path()
    if is_fresh(path, time.time()):
        return 0
    print(f"backend heartbeat {path} is missing or older than {STALE_AFTER_S:.0f} s")
    return 1


if __name__ == "__main__":
    sys.exit(main())
