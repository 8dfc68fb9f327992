"""Entra ID tokens for Application Insights ingestion, fetched once and refreshed before expiry.

With `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` set, each track request carries
`Authorization: Bearer <token>` for Azure Monitor; the resource then needs no instrumentation
key to be secret, and its local (key-based) ingestion can be off.
https://learn.microsoft.com/en-us/azure/azure-monitor/app/azure-ad-authentication

azure-core's BearerTokenCredentialPolicy does the same inside an azure-core pipeline, but the
sink posts with requests (it must read every answer itself), so the cache is this small class:
a token is reused until a margin before its `expires_on`, and a failed refresh keeps the old
token while it is still valid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError

from backend.settings import EntraAuthentication

# Azure Monitor's audience with the `/.default` suffix; the double slash is how the Azure
# Monitor SDKs spell it, and the token's `aud` is `https://monitor.azure.com/`.
MONITOR_AUDIENCE = "https://monitor.azure.com/"
# A token is refreshed this long before it expires (or half its lifetime, if shorter), so no
# request carries one that expires in flight and a failed refresh has time to be tried again.
REFRESH_MARGIN_S = 300.0
# While the old token is still valid, a failed refresh is tried again at most this often.
RETRY_INTERVAL_S = 10.0
MAX_CAUSE_CHARS = 200


class TokenCredential(Protocol):
    """What azure-identity's credentials offer: a token for scopes."""

    def get_token(self, *scopes: str) -> AccessToken:
        """A token for `scopes`."""
        ...


class TokenUnavailable(Exception):
    """No valid token could be had: the batch is held, as for a 401."""


def scope_for(audience: str | None) -> str:
    """The scope to ask for: `<audience>/.default`, Azure Monitor's unless another is given."""
    return (audience or MONITOR_AUDIENCE).rstrip("/") + "//.default"


def credential_for(authentication: EntraAuthentication) -> TokenCredential:
    """The identity's credential: the user-assigned one named by ClientId, else the default."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if authentication.client_id:
        return ManagedIdentityCredential(client_id=authentication.client_id)
    return DefaultAzureCredential()


class BearerToken:
    """`Authorization` header values from `credential` for `scope`, cached until near expiry."""

    def __init__(
        self,
        credential: TokenCredential,
        scope: str = scope_for(None),
        clock: Callable[[], float] = time.time,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._clock = clock
        self._margin_s = margin_s
        self._token: AccessToken | None = None
        self._refresh_at = 0.0
        self._next_attempt = 0.0
        self._lock = threading.Lock()

    def header(self) -> str:
        """`Bearer <token>`, fetching a new token when none is held or it is due for refresh.

        Raises:
            TokenUnavailable: the credential failed and no still-valid token is held.
        """
        with self._lock:
            now = self._clock()
            token = self._token
            valid = token is not None and now < token.expires_on
            if token is not None and (
                now < self._refresh_at or (valid and now < self._next_attempt)
            ):
                return f"Bearer {token.token}"
            try:
                fresh = self._credential.get_token(self._scope)
            except AzureError as error:  # azure-identity's failures all derive from it
                self._next_attempt = now + RETRY_INTERVAL_S
                if token is not None and valid:
                    return f"Bearer {token.token}"
                first_line = (str(error).splitlines() or [""])[0][:MAX_CAUSE_CHARS]
                raise TokenUnavailable(
                    f"no Entra ID token for Application Insights ({type(error).__name__}: "
                    f"{first_line})"
                ) from None
            lifetime_s = max(fresh.expires_on - now, 0.0)
            self._token = fresh
            self._refresh_at = fresh.expires_on - min(self._margin_s, lifetime_s / 2)
            return f"Bearer {fresh.token}"
