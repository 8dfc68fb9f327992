"""Read GitHub's nullable payload fields as the strings and ids the telemetry needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backend.telemetry.errors import MappingError


def section(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """Return the nested object `key`, or an empty one when GitHub sent null or nothing."""
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def required_section(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """Return the nested object `key`, raising MappingError when it is absent or not an object."""
    value = payload.get(key)
    if not isinstance(value, Mapping):
        raise MappingError(f"payload has no `{key}` object")
    return value


def text(obj: Mapping[str, Any], key: str) -> str:
    """Return a scalar field as a string: null (or a non-scalar) becomes ""."""
    return scalar_text(obj.get(key))


def clean(value: str) -> str:
    """Return `value` encodable as UTF-8: a lone surrogate (JSON allows "\\ud800") becomes "?"."""
    return value.encode("utf-8", "replace").decode("utf-8")


def scalar_text(value: object) -> str:
    """Render one scalar the way properties carry it ("true"/"false" for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, int | float):
        return str(value)
    return ""


def _whole_number(value: object) -> int | None:
    """An int, or a float with no fraction (2.0, as some JSON encoders write 2), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def required_id(obj: Mapping[str, Any], key: str, where: str) -> str:
    """Return an id field as a string, raising MappingError when it is missing or not an id."""
    value = obj.get(key)
    number = _whole_number(value)
    if number is not None:
        return str(number)
    if isinstance(value, str) and value.strip():
        return clean(value.strip())
    raise MappingError(f"`{where}.{key}` is missing or not an id (got {type(value).__name__})")


def run_attempt(obj: Mapping[str, Any]) -> str:
    """Return `run_attempt` as a string; payloads without one (older GHES) are attempt 1."""
    value = obj.get("run_attempt")
    number = _whole_number(value)
    if number is not None and number >= 1:
        return str(number)
    if isinstance(value, str) and value.strip().isdigit() and int(value) >= 1:
        return str(int(value))
    return "1"


def login(obj: Mapping[str, Any], key: str) -> str:
    """Return the `login` of a nested account object (actor, sender, ...), or ""."""
    return text(section(obj, key), "login")


def strings(value: object) -> list[str]:
    """Return a list field's scalar entries as strings, in GitHub's order; null is empty."""
    if not isinstance(value, list):
        return []
    return [scalar_text(entry) for entry in value if scalar_text(entry)]


def joined(value: object) -> str:
    """Comma-join a list field in GitHub's order; null or no list is ""."""
    return ",".join(strings(value))


def repository(payload: Mapping[str, Any], inner: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the delivery's repository, falling back to the copy nested in the inner object."""
    top = section(payload, "repository")
    return top if top else section(inner, "repository")
