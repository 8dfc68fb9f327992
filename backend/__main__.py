"""`python -m backend`: read the settings, then supervise the worker pool."""

from __future__ import annotations

import logging
import sys

from backend.process import EXIT_CONFIG
from backend.settings import load_backend_settings
from backend.sinks import disable_statsbeat_by_default
from common.logs import configure_logging
from common.settings import SettingsError, environment

log = logging.getLogger("backend")


def main() -> int:
    """Run the pool until SIGTERM/SIGINT; exit 0 after a graceful stop."""
    configure_logging("backend")
    # Workers inherit the environment: opencensus's usage reporting stays off unless chosen.
    disable_statsbeat_by_default()
    try:
        # The ledger's settings included: a bad value stops the pool before any worker starts.
        settings = load_backend_settings(environment())
    except SettingsError as error:
        log.error("backend cannot start: %s", error)
        return EXIT_CONFIG
    from backend.pool import Supervisor

    return Supervisor(settings, settings.worker_processes).run()


if __name__ == "__main__":
    sys.exit(main())
