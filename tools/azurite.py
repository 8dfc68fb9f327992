"""Start and stop Azurite, the Azure Storage emulator pinned in package.json, on loopback ports.

Used by the test session, `make run` and the benchmark; production never imports it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

# Azurite's fixed development account. https://learn.microsoft.com/en-us/azure/storage/common/storage-use-azurite
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30.0


class AzuriteError(RuntimeError):
    """Azurite is not installed or did not start."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _is_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def azurite_binary() -> Path:
    """The Azurite launcher installed by `npm ci`."""
    binary = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
    if not binary.exists():
        raise AzuriteError(f"{binary.relative_to(PROJECT_ROOT)} is missing: run `make install`")
    return binary


class Azurite:
    """One Azurite process serving queues and tables on free loopback ports.

    With a `workspace` folder its data survives `stop()`, and `start()` again brings it back on
    the same ports: tests use that to simulate an outage and a recovery. With `cert` and `key`
    (PEM files) it serves HTTPS; `oauth` then also accepts bearer tokens (`--oauth basic`
    checks a token's audience, issuer and lifetime, not its signature, and needs HTTPS).
    """

    def __init__(
        self,
        workspace: Path | None = None,
        in_memory: bool = True,
        *,
        cert: Path | None = None,
        key: Path | None = None,
        oauth: bool = False,
    ) -> None:
        if (cert is None) != (key is None):
            raise ValueError("give both cert and key, or neither")
        if oauth and cert is None:
            raise ValueError("Azurite accepts bearer tokens over HTTPS only: give cert and key")
        self.cert = cert
        self.key = key
        self.oauth = oauth
        self.queue_port = free_port()
        self.table_port = free_port()
        self.blob_port = free_port()
        self._in_memory = in_memory and workspace is None
        self._workspace = workspace
        self._scratch: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def scheme(self) -> str:
        """`https` with a certificate, else `http`."""
        return "http" if self.cert is None else "https"

    @property
    def queue_endpoint(self) -> str:
        """The development account's queue service URL on this instance."""
        return f"{self.scheme}://127.0.0.1:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        """The development account's table service URL on this instance."""
        return f"{self.scheme}://127.0.0.1:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """A connection string for the development account on this instance's ports."""
        base = f"{self.scheme}://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT_NAME};"
            f"QueueEndpoint={base}:{self.queue_port}/{ACCOUNT_NAME};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT_NAME};"
        )

    @property
    def pid(self) -> int | None:
        """The emulator's process id (its process group's too) while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> Azurite:
        """Start the emulator and wait until its queue and table ports accept connections."""
        command = [
            str(azurite_binary()),
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--blobHost",
            "127.0.0.1",
            "--queueHost",
            "127.0.0.1",
            "--tableHost",
            "127.0.0.1",
            "--blobPort",
            str(self.blob_port),
            "--queuePort",
            str(self.queue_port),
            "--tablePort",
            str(self.table_port),
        ]
        if self.cert is not None and self.key is not None:
            command += ["--cert", str(self.cert), "--key", str(self.key)]
        if self.oauth:
            command += ["--oauth", "basic"]
        if self._in_memory:
            command.append("--inMemoryPersistence")
            # Azurite writes nothing in memory mode, but keep its cwd out of the checkout.
            self._scratch = tempfile.mkdtemp(prefix="azurite-")
            cwd = self._scratch
        else:
            assert self._workspace is not None
            self._workspace.mkdir(parents=True, exist_ok=True)
            command += ["--location", str(self._workspace)]
            cwd = str(self._workspace)
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._log.seek(0)
                error = self._log.read().decode(errors="replace")
                self.stop()
                raise AzuriteError(
                    f"Azurite exited with {self._process.returncode}: {error[-500:]}"
                )
            if _is_listening(self.queue_port) and _is_listening(self.table_port):
                return self
            time.sleep(0.05)
        self.stop()
        raise AzuriteError(f"Azurite did not listen within {STARTUP_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stop the emulator (its whole process group) and wait for it to exit."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
