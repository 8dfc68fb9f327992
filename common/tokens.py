"""Entra ID bearer tokens for calls made outside an azure-core pipeline, cached until near expiry.

azure-core's BearerTokenCredentialPolicy does this inside a pipeline. Two calls here are made
without one, each for a measured reason written beside it: the backend's posts to Application
Insights (it must read every answer itself) and the frontend's Put Message
(`common/queue_put.py`). A token is reused until a margin before its `expires_on`, and a failed
refresh keeps the old token while it is still valid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError

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
    """No valid token could be had; the message names what it was for and why.

    `cause` is the credential's own error, for callers that describe it their way.
    """

    def __init__(self, message: str, cause: AzureError) -> None:
        super().__init__(message)
        self.cause = cause


class BearerToken:
    """`Authorization` header values from `credential` for `scope`, cached until near expiry.

    `purpose` names what the token is for in the error a failed credential raises
    ("Application Insights", "the storage queue").
    """

    def __init__(
        self,
        credential: TokenCredential,
        scope: str,
        purpose: str,
        clock: Callable[[], float] = time.time,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._purpose = purpose
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
                    f"no Entra ID token for {self._purpose} ({type(error).__name__}: {first_line})",
                    error,
                ) from None
            lifetime_s = max(fresh.expires_on - now, 0.0)
            self._token = fresh
            self._refresh_at = fresh.expires_on - min(self._margin_s, lifetime_s / 2)
            return f"Bearer {fresh.token}"
