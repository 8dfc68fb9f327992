"""An HTTPS proxy in front of one Azurite service that answers 403 until a role is granted.

Right after a deployment, an identity's role assignment takes minutes to reach the storage
service, which until then answers `403 AuthorizationPermissionMismatch` to a valid token.
Azurite's `--oauth basic` checks a token's audience, issuer and lifetime but knows no roles, so
it never answers that: this proxy does, while `granted` is false, and forwards every request
once it is true. It also records how each request authenticated, so a test can show that no
key was used.
https://learn.microsoft.com/en-us/rest/api/storageservices/queue-service-error-codes
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.identity.certificate import Certificate
from tests.identity.token_server import serving
from tools.azurite import ACCOUNT_NAME

ERROR_CODE = "AuthorizationPermissionMismatch"
_MESSAGE = "This request is not authorized to perform this operation using this permission."
# Hop-by-hop headers, and the length this proxy sets itself.
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class RoleGate(ThreadingHTTPServer):
    """Forwards to `https://127.0.0.1:<upstream_port>` of a `queue` or `table` service."""

    daemon_threads = True

    def __init__(self, service: str, upstream_port: int, certificate: Certificate) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.service = service
        self.upstream_port = upstream_port
        self.granted = False
        self.denied = 0
        self.forwarded = 0
        self.schemes: set[str] = set()
        self._lock = threading.Lock()
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(certificate.cert_path, certificate.key_path)
        self.socket = server_context.wrap_socket(self.socket, server_side=True)
        self.client_context = ssl.create_default_context(cafile=str(certificate.cert_path))

    @property
    def endpoint(self) -> str:
        """The service URL to configure instead of Azurite's."""
        return f"https://127.0.0.1:{self.server_address[1]}/{ACCOUNT_NAME}"

    def admit(self, authorization: str) -> bool:
        """Record the request's authentication scheme; True if it may pass."""
        with self._lock:
            self.schemes.add(authorization.split(" ", 1)[0] if authorization else "")
            if self.granted:
                self.forwarded += 1
            else:
                self.denied += 1
            return self.granted

    def refusal(self) -> tuple[bytes, str]:
        """The body the service sends with the 403, and its content type."""
        if self.service == "table":
            error = {
                "odata.error": {"code": ERROR_CODE, "message": {"lang": "en-US", "value": _MESSAGE}}
            }
            return json.dumps(error).encode(), "application/json;odata=minimalmetadata"
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{ERROR_CODE}</Code><Message>{_MESSAGE}</Message></Error>"
        )
        return xml.encode(), "application/xml"


class _Handler(BaseHTTPRequestHandler):
    server: RoleGate
    protocol_version = "HTTP/1.1"

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.server.admit(self.headers.get("Authorization", "")):
            data, content_type = self.server.refusal()
            self._reply(
                403, [("Content-Type", content_type), ("x-ms-error-code", ERROR_CODE)], data
            )
            return
        upstream = http.client.HTTPSConnection(
            "127.0.0.1", self.server.upstream_port, context=self.server.client_context, timeout=30
        )
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _NOT_FORWARDED]
            self._reply(response.status, kept, data)
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_MERGE = do_PATCH = _relay

    def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the hook's name)
        """Quiet: the tests assert on the counters."""


@contextmanager
def role_gate(service: str, upstream_port: int, certificate: Certificate) -> Iterator[RoleGate]:
    """A running gate, refusing until `granted` is set; stopped on exit."""
    with serving(RoleGate(service, upstream_port, certificate)) as gate:
        yield gate
