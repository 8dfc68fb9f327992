"""`python -m backend`: read the settings, then supervise the worker pool."""

from __future__ import annotations

import logging
import sys

from backend.settings import check_sink_choice, load_backend_settings
from backend.sinks import disable_statsbeat_by_default
from common.logs import configure_logging, load_log_settings
from common.settings import SettingsError, environment, refuse_to_start

log = logging.getLogger("backend")


def main() -> int:
    """Run the pool until SIGTERM/SIGINT; exit 0 after a graceful stop, 78 on a bad setting."""
    env = environment()
    warnings: list[str] = []
    try:
        configure_logging("backend", load_log_settings(env))
        # The ledger's settings included: a bad value stops the pool before any worker starts.
        settings = load_backend_settings(env, warnings)
        check_sink_choice(settings, env)
    except SettingsError as error:
        for warning in warnings:
            print(f"github-telemetry backend: {warning}", file=sys.stderr)
        refuse_to_start("backend", error)
    for warning in warnings:
        log.warning("%s", warning)
    # Workers inherit the environment: opencensus's usage reporting stays off unless chosen.
    disable_statsbeat_by_default()
    from backend.pool import Supervisor

    return Supervisor(settings, settings.worker_processes).run()


if __name__ == "__main__":
    sys.exit(main())
