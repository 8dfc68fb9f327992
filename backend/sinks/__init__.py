"""Telemetry sinks: Application Insights, or local JSON Lines when `TELEMETRY_SINK=file`."""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

from backend.settings import FILE_SINK, BackendSettings
from backend.sinks.base import ExportResult, Rejection, TelemetrySink
from common.settings import container_hint

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
    if settings.telemetry_sink != FILE_SINK and settings.appinsights_connection_string:
        disable_statsbeat_by_default()
        from backend.sinks.appinsights import AppInsightsSink
        from backend.sinks.entra import credential_for

        authentication = settings.appinsights_authentication
        sink = AppInsightsSink(
            settings.appinsights_connection_string,
            timeout_s=export_timeout_s(settings.visibility_timeout_s),
            credential=credential_for(authentication) if authentication else None,
        )
        log.info(
            "telemetry goes to Application Insights at %s with %s",
            sink.endpoint,
            "an Entra ID token" if authentication else "the instrumentation key only",
        )
        return sink
    from backend.sinks.jsonl import JsonlSink

    where = container_hint(os.environ)
    if where:
        # Chosen on purpose (TELEMETRY_SINK=file), but only a volume keeps the file.
        log.warning(
            "telemetry goes to the local file %s in a container (%s): keep it on a volume",
            settings.telemetry_file,
            where,
        )
    else:
        log.info("telemetry goes to the local file %s", settings.telemetry_file)
    return JsonlSink(settings.telemetry_file)
