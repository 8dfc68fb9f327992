"""Oversized but legal deliveries: huge commit messages, 1,000 steps, long distinct names."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from tools.payloads import HEAD_SHA, step, workflow_job_payload, workflow_run_payload

STEP_STARTED_AT = "2024-03-05T10:00:11.000Z"
STEP_COMPLETED_AT = "2024-03-05T10:00:13.000Z"


def noise(seed: str, length: int) -> str:
    """`length` characters of text that gzip cannot shrink much, the same for the same seed."""
    digests = length * 3 // 4 // 64 + 1  # 64 bytes per SHA-512 digest, 4 chars per 3 bytes
    chunks = [hashlib.sha512(f"{seed}/{counter}".encode()).digest() for counter in range(digests)]
    return base64.b64encode(b"".join(chunks)).decode("ascii")[:length]


def run_with_huge_commit_message(message_chars: int = 1_000_000) -> dict[str, Any]:
    """A completed run whose head commit message is `message_chars` long."""
    return workflow_run_payload(
        "completed",
        head_commit={
            "id": HEAD_SHA,
            "tree_id": "4c1f2e3d5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0e",
            "message": noise("commit", message_chars),
            "timestamp": "2024-03-05T09:59:41Z",
            "author": {"name": "Mona Lisa", "email": "mona@example.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        },
    )


def job_with_steps(count: int = 1000, name_chars: int | None = None) -> dict[str, Any]:
    """A completed job with `count` steps; names are realistic, or noise of `name_chars`."""
    steps = [
        step(
            number,
            noise(f"step-{number}", name_chars)
            if name_chars
            else f"Run ./scripts/check-{number}.sh",
            STEP_STARTED_AT,
            STEP_COMPLETED_AT,
        )
        for number in range(1, count + 1)
    ]
    return workflow_job_payload("completed", steps=steps)
