"""`python -m backend`: read the settings, then supervise the worker pool."""

from __future__ import annotations

import logging
import sys

from backend.idempotency.ledger import load_ledger_settings
from backend.process import EXIT_CONFIG
from backend.sinks import disable_statsbeat_by_default
from common.logs import configure_logging
from common.settings import SettingsError, environment, load_backend_settings

log = logging.getLogger("backend")


def main() -> int:
    """Run the pool until SIGTERM/SIGINT; exit 0 after a graceful stop."""
    configure_logging("backend")
    # Workers inherit the environment: opencensus's usage reporting stays off unless chosen.
    disable_statsbeat_by_default()
    env = environment()
    try:
        settings = load_backend_settings(env)
        # Checked here too so a bad ledger value stops the pool before any worker starts.
        load_ledger_settings(env)
    except SettingsError as error:
        log.error("backend cannot start: %s", error)
        return EXIT_CONFIG
    from backend.pool import Supervisor

    return Supervisor(settings, settings.worker_processes).run()


if __name__ == "__main__":
    sys.exit(main())
