"""CPU seconds spent by groups of processes (from /proc), to tell what bounds a figure."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid_dir: Path) -> list[str] | None:
    try:
        text = (pid_dir / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name may hold spaces; the fields after its closing parenthesis do not.
    return text.rpartition(")")[2].split()


def session_cpu_s(session_id: int) -> float:
    """User and system CPU seconds of every live process in session `session_id`."""
    total_ticks = 0
    for pid_dir in Path("/proc").glob("[0-9]*"):
        fields = _stat_fields(pid_dir)
        # After the name: state ppid pgrp session ... utime(12) stime(13), 0-based here.
        if fields is not None and len(fields) > 12 and int(fields[3]) == session_id:
            total_ticks += int(fields[11]) + int(fields[12])
    return total_ticks / _TICKS_PER_S


def session_of_port(port: int) -> int | None:
    """The session of the process whose command line names `port` (Azurite's queue port)."""
    needle = f"\0{port}\0".encode()
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            command = (pid_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in command:
            return os.getsid(int(pid_dir.name))
    return None


def own_cpu_s() -> float:
    """CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU milliseconds per unit of work, per named session, between `start()` and `per_unit()`."""

    def __init__(self, sessions: dict[str, int | None]) -> None:
        self._sessions = {name: sid for name, sid in sessions.items() if sid is not None}
        self._before: dict[str, float] = {}

    def start(self) -> Meter:
        """Take the starting readings."""
        self._before = {name: session_cpu_s(sid) for name, sid in self._sessions.items()}
        return self

    def per_unit(self, units: int, **extra_cpu_s: float) -> dict[str, float | int | str]:
        """`cpu_ms_<name>` per unit for each session, and for each extra CPU figure given."""
        spent = {n: session_cpu_s(sid) - self._before[n] for n, sid in self._sessions.items()}
        spent.update(extra_cpu_s)
        return {f"cpu_ms_{name}": round(s * 1000 / max(units, 1), 2) for name, s in spent.items()}
