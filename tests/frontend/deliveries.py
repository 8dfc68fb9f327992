"""Build signed webhook requests the way GitHub sends them, for the frontend tests."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from common.settings import StorageSettings
from frontend.settings import FrontendSettings
from frontend.signature import sign
from tools.payloads import DELIVERY_ID, ORG_ID, workflow_run_payload

SECRET = "webhook-secret-for-tests"
OLD_SECRET = "previous-secret-still-accepted"
HOOK_ID = "470102145"


def frontend_settings(storage: StorageSettings | None = None) -> FrontendSettings:
    """Frontend settings with two secrets (a rotation) and the given storage."""
    return FrontendSettings(
        host="127.0.0.1",
        port=8080,
        webhook_secrets=(SECRET, OLD_SECRET),
        storage=storage or StorageSettings("UseDevelopmentStorage=true", None, "unused"),
    )


def json_body(payload: Any) -> bytes:
    """The body GitHub sends with content type application/json."""
    return json.dumps(payload).encode("utf-8")


def form_body(payload: Any) -> bytes:
    """The body GitHub sends with content type application/x-www-form-urlencoded."""
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode("ascii")


def github_headers(
    body: bytes,
    event: str,
    secret: str = SECRET,
    delivery_id: str = DELIVERY_ID,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers of a signed delivery from an organization webhook."""
    return {
        "Content-Type": content_type,
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": HOOK_ID,
        "X-GitHub-Hook-Installation-Target-Type": "organization",
        "X-GitHub-Hook-Installation-Target-ID": str(ORG_ID),
        "X-Hub-Signature-256": sign(body, secret),
    }


def signed_delivery(event: str = "workflow_run") -> tuple[bytes, dict[str, str]]:
    """A signed JSON `workflow_run` delivery: its body and headers."""
    body = json_body(workflow_run_payload())
    return body, github_headers(body, event)


def post_webhook(
    client: FlaskClient, body: bytes, headers: dict[str, str], **kwargs: Any
) -> TestResponse:
    """POST `body` to /webhook with `headers`."""
    return client.post("/webhook", data=body, headers=headers, **kwargs)
