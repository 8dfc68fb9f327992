"""Resident memory of processes and their children (from /proc), for the soak and the tests."""

from __future__ import annotations

import os
from pathlib import Path

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def children_of(pid: int) -> list[int]:
    """Pids of the live processes whose parent is `pid`."""
    found = []
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            text = (pid_dir / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        # The command name may hold spaces; after its closing parenthesis: state, ppid, ...
        fields = text.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(pid_dir.name))
    return sorted(found)


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` now; 0 once it is gone."""
    try:
        pages = (Path("/proc") / str(pid) / "statm").read_text(encoding="ascii").split()[1]
    except (OSError, IndexError):
        return 0
    return int(pages) * _PAGE_BYTES
