"""Telemetry sinks: Application Insights when configured, else local JSON Lines."""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

from backend.settings import BackendSettings
from backend.sinks.base import ExportResult, Rejection, TelemetrySink

log = logging.getLogger(__name__)

STATSBEAT_SWITCH = "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"

__all__ = [
    "ExportResult",
    "Rejection",
    "TelemetrySink",
    "build_sink",
    "disable_statsbeat_by_default",
]


def disable_statsbeat_by_default(env: MutableMapping[str, str] = os.environ) -> None:
    """Turn opencensus's usage reporting to Microsoft off unless the operator chose a value."""
    env.setdefault(STATSBEAT_SWITCH, "true")


def export_timeout_s(visibility_timeout_s: float) -> float:
    """One export may take at most half the visibility timeout (and 10 s), so the lease holds."""
    return max(0.5, min(10.0, visibility_timeout_s / 2.0))


def build_sink(settings: BackendSettings) -> TelemetrySink:
    """The sink the settings ask for; built inside each worker process, never before a fork."""
    if settings.appinsights_connection_string:
        disable_statsbeat_by_default()
        from backend.sinks.appinsights import AppInsightsSink

        sink = AppInsightsSink(
            settings.appinsights_connection_string,
            timeout_s=export_timeout_s(settings.visibility_timeout_s),
        )
        log.info("telemetry goes to Application Insights at %s", sink.endpoint)
        return sink
    from backend.sinks.jsonl import JsonlSink

    log.info(
        "telemetry goes to %s (no Application Insights connection string)", settings.telemetry_file
    )
    return JsonlSink(settings.telemetry_file)
