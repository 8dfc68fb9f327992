"""The one delivery every figure uses: a completed `workflow_job` with four steps, per index.

Delivery `i` differs from the template only in its job id and delivery id, so every body,
envelope and signature has the same size while each delivery stays distinguishable end to end.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from backend.telemetry.mapping import to_telemetry
from common.envelope import decode, encode_pack, utc_now
from common.packing import pack
from frontend.delivery import parse_delivery
from frontend.signature import sign
from tools.payloads import JOB_ID, workflow_job_payload

EVENT = "workflow_job"
SECRET = "bench-secret"
_JOB_ID_TEXT = str(JOB_ID).encode("ascii")


@cache
def template() -> bytes:
    """The delivery body with the template job id."""
    return json.dumps(workflow_job_payload("completed"), separators=(",", ":")).encode("utf-8")


def job_id(index: int) -> int:
    """The job id of delivery `index` (same digit count as the template's)."""
    return JOB_ID + index


def body(index: int) -> bytes:
    """The body of delivery `index`."""
    return template().replace(_JOB_ID_TEXT, str(job_id(index)).encode("ascii"))


def delivery_id(tag: str, index: int) -> str:
    """A delivery id unique to one run (`tag`) and index."""
    return f"bench-{tag}-{index:08d}"


def headers(tag: str, index: int, data: bytes) -> dict[str, str]:
    """The headers GitHub sends with delivery `index`, signed with SECRET."""
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": EVENT,
        "X-GitHub-Delivery": delivery_id(tag, index),
        "X-GitHub-Hook-ID": "470102145",
        "X-Hub-Signature-256": sign(data, SECRET),
        "User-Agent": "GitHub-Hookshot/bench",
    }


def envelope_text(tag: str, index: int) -> str:
    """The queue message the frontend would send for delivery `index`."""
    data = body(index)
    delivery = parse_delivery(headers(tag, index, data), "application/json", data, utc_now())
    return pack(delivery).text


def pack_of(texts: list[str]) -> str:
    """The product's pack of the envelopes in single-envelope `texts`."""
    return encode_pack([gzip.decompress(base64.b64decode(text)) for text in texts])


@cache
def items_per_delivery() -> int:
    """How many telemetry items one delivery becomes."""
    return len(to_telemetry(decode(envelope_text("count", 0)), utc_now()))


def count_by_job(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Accepted ingestion events per job id."""
    counts: dict[str, int] = {}
    for event in events:
        properties = event.get("data", {}).get("baseData", {}).get("properties", {})
        key = str(properties.get("job_id", ""))
        counts[key] = counts.get(key, 0) + 1
    return counts


def lost_and_doubled(counts: Mapping[str, int], indices: range) -> tuple[int, int]:
    """Items missing and items extra for the deliveries in `indices`."""
    expected = items_per_delivery()
    lost = doubled = 0
    wanted = {str(job_id(index)) for index in indices}
    for key in wanted:
        got = counts.get(key, 0)
        lost += max(expected - got, 0)
        doubled += max(got - expected, 0)
    doubled += sum(n for key, n in counts.items() if key not in wanted)
    return lost, doubled
