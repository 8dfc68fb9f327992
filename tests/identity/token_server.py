"""A local managed-identity endpoint: the protocol Azure Container Apps offers its apps.

Container Apps sets `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` in an app's environment; a token
is a GET of that URL with `api-version=2019-08-01`, `resource` and, for a user-assigned
identity, `client_id`, carrying the header's value as `X-IDENTITY-HEADER`. azure-identity's
ManagedIdentityCredential (and so DefaultAzureCredential) speaks it.
https://learn.microsoft.com/en-us/azure/container-apps/managed-identity#rest-endpoint-reference

The tokens are unsecured JWTs (`alg: none`) with the claims Azurite's `--oauth basic` checks:
`aud` (the resource asked for), `iss` (an Entra ID issuer), `nbf`, `iat` and `exp`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

API_VERSION = "2019-08-01"
HEADER = "X-IDENTITY-HEADER"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ISSUER = f"https://sts.windows.net/{TENANT_ID}/"
DEFAULT_LIFETIME_S = 3600


@dataclass(frozen=True)
class Issued:
    """One token the endpoint gave out: for which resource and which identity."""

    resource: str
    client_id: str
    claims: Mapping[str, Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsecured_jwt(claims: Mapping[str, Any]) -> str:
    """An unsigned JWT (RFC 7519 section 6) carrying `claims`."""
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(dict(claims)).encode())}."


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class TokenServer(ThreadingHTTPServer):
    """The endpoint; `identities` maps each user-assigned identity's client id to its principal.

    `issued` records every token given out; `lifetime_s` is how long new tokens live.
    """

    daemon_threads = True

    def __init__(self, identities: Mapping[str, str], lifetime_s: int = DEFAULT_LIFETIME_S):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.identities = dict(identities)
        self.lifetime_s = lifetime_s
        self.secret = secrets.token_hex(16)
        self.issued: list[Issued] = []
        self.refused = 0
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The URL Container Apps would put in IDENTITY_ENDPOINT."""
        return f"http://127.0.0.1:{self.server_address[1]}/msi/token"

    def environment(self) -> dict[str, str]:
        """The variables an app in Container Apps finds in its environment."""
        return {"IDENTITY_ENDPOINT": self.endpoint, "IDENTITY_HEADER": self.secret}

    def issue(self, resource: str, client_id: str) -> dict[str, Any]:
        """A token response for `client_id`'s principal, audience `resource`."""
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": ISSUER,
            "iat": now,
            "nbf": now - 60,
            "exp": now + self.lifetime_s,
            "appid": client_id,
            "oid": self.identities[client_id],
            "sub": self.identities[client_id],
            "tid": TENANT_ID,
            "idtyp": "app",
            "ver": "1.0",
        }
        with self._lock:
            self.issued.append(Issued(resource, client_id, claims))
        return {
            "access_token": unsecured_jwt(claims),
            "expires_on": str(claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        }

    def refuse(self) -> None:
        """Count a refused request."""
        with self._lock:
            self.refused += 1


class _Handler(BaseHTTPRequestHandler):
    server: TokenServer

    def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path != "/msi/token":
            self._answer(404, {"error": "not_found"})
        elif self.headers.get(HEADER) != self.server.secret:
            self._answer(401, {"error": "invalid_request", "error_description": f"bad {HEADER}"})
        elif query.get("api-version") != API_VERSION or not query.get("resource"):
            self._answer(400, {"error": "invalid_request", "error_description": "bad query"})
        elif query.get("client_id") not in self.server.identities:
            # Only user-assigned identities here: the request must name one the app has.
            self._answer(400, {"error": "invalid_request", "error_description": "unknown identity"})
        else:
            self._answer(200, self.server.issue(query["resource"], query["client_id"]))

    def _answer(self, status: int, body: Mapping[str, Any]) -> None:
        if status != 200:
            self.server.refuse()
        data = json.dumps(dict(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the hook's name)
        """Quiet: the tests assert on `issued`."""


@contextmanager
def token_server(
    identities: Mapping[str, str], lifetime_s: int = DEFAULT_LIFETIME_S
) -> Iterator[TokenServer]:
    """A running token endpoint, stopped on exit."""
    with serving(TokenServer(identities, lifetime_s)) as server:
        yield server


ServerT = TypeVar("ServerT", bound=ThreadingHTTPServer)


@contextmanager
def serving(server: ServerT) -> Iterator[ServerT]:
    """`server` answering on a thread of its own until the block ends, then closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
