"""What a running `make run` leaves in `var/`: its pid, its children's, its URL and its sinks.

The next `make run` reads it to refuse starting beside a stack that is still there (or its
leftovers), and `make demo` reads it to find the stack's URL and whether it is all local.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "devstack.json"


@dataclass
class StackState:
    """One `make run`: its own pid, its children's process groups, and where it answers."""

    pid: int
    children: dict[str, int] = field(default_factory=dict)
    url: str | None = None
    telemetry: str | None = None  # the local sink's file, or None for Application Insights
    local_queue: bool = True

    def write(self, folder: Path) -> None:
        """Replace the state file atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        scratch = folder / f".{STATE_FILE}.{os.getpid()}"
        scratch.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        scratch.replace(folder / STATE_FILE)


def read_state(folder: Path) -> StackState | None:
    """The state an earlier or running `make run` left, or None."""
    try:
        document: dict[str, Any] = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        return StackState(**document)
    except (OSError, ValueError, TypeError):
        return None


def remove_state(folder: Path, pid: int) -> None:
    """Remove the state file if it is still `pid`'s."""
    state = read_state(folder)
    if state is not None and state.pid == pid:
        (folder / STATE_FILE).unlink(missing_ok=True)


def command_line(pid: int) -> str:
    """A process's command line ('' when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_alive(pid: int) -> bool:
    """The process exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        try:
            return "\nState:\tZ" not in status.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    return True


# What the command line of each child of `make run` holds, so a reused pid is not taken for it.
MARKERS = {"frontend": "gunicorn", "backend": "backend", "azurite": "azurite"}


def group_alive(pgid: int, marker: str = "") -> bool:
    """Some process of the process group `pgid` (whose command holds `marker`) still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return not marker
    if not Path("/proc").is_dir():
        return True
    return any(is_alive(pid) and marker in command_line(pid) for pid in _members(pgid))


def _members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                # Field 5 of /proc/<pid>/stat is the process group; the command may hold spaces.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def is_listening(host: str, port: int) -> bool:
    """Something accepts TCP connections at host:port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((host, port)) == 0


def leftovers(state: StackState) -> str | None:
    """What of an earlier `make run` still runs, and what to do about it; None when nothing."""
    if state.pid != os.getpid() and is_alive(state.pid) and "devstack" in command_line(state.pid):
        return (
            f"`make run` is already going (pid {state.pid}, {state.url or 'starting'}): use it, "
            f"or stop it first (Ctrl-C in its terminal, or `kill {state.pid}`)"
        )
    running = {
        name: pgid
        for name, pgid in state.children.items()
        if group_alive(pgid, MARKERS.get(name, ""))
    }
    if not running:
        return None
    listed = ", ".join(f"{name} {pgid}" for name, pgid in running.items())
    groups = " ".join(f"-{pgid}" for pgid in running.values())
    return (
        f"processes of an earlier `make run` are still running ({listed}): "
        f"stop them with `kill -TERM -- {groups}`, then run `make run` again"
    )
