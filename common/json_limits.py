"""Limits on the JSON the services accept: nesting depth and standard (finite) numbers."""

from __future__ import annotations

import math
from typing import Any

# GitHub's payloads nest about 6 levels and an envelope adds 2 (a pack 2 more); far deeper is
# an attack on the recursion limit of whatever walks it next (json.dumps, marshmallow).
MAX_JSON_DEPTH = 64


def nesting_depth(document: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep objects and arrays nest in `document` (a scalar is 0); stops past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def finite_float(text: str) -> float:
    """`json.loads`'s `parse_float` that refuses numbers beyond a double (1e400 is not inf).

    Raises:
        ValueError: the number overflows to infinity, which standard JSON cannot carry.
    """
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value
