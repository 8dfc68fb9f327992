"""The one error the telemetry mapping raises: a payload that lacks what every event needs."""

from __future__ import annotations


class MappingError(ValueError):
    """A delivery that cannot be mapped to telemetry (the worker poisons its message)."""
