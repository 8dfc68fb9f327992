"""GitHub webhook signatures: HMAC-SHA256 of the raw body, compared in constant time.

`sign` is what GitHub does to a body; the local tools and the tests sign with it.

https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Hub-Signature-256"

# GitHub sends "sha256=" and 64 lowercase hex digits; anything else is not a signature.
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})", re.ASCII)


class SignatureError(Exception):
    """The signature header is missing, malformed or matches none of the secrets."""


def sign(body: bytes, secret: str) -> str:
    """GitHub's `X-Hub-Signature-256` value for `body` under `secret`: "sha256=<hex>"."""
    return "sha256=" + _digest(body, secret).hex()


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Accept `body` if `header` is its HMAC-SHA256 under any of `secrets`.

    Raises:
        SignatureError: the header is missing or malformed, or no secret matches.
    """
    check = SignatureCheck(header, secrets)
    check.update(body)
    check.verify()


class SignatureCheck:
    """A signature checked against a body fed piece by piece, so the body need not be whole.

    The header's shape is checked first: a missing or malformed one is refused before any
    byte of the body is read.
    """

    def __init__(self, header: str | None, secrets: Sequence[str]) -> None:
        if not header:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        match = _SIGNATURE.fullmatch(header)
        if match is None:
            raise SignatureError(f"malformed {SIGNATURE_HEADER} header: expected sha256=<64 hex>")
        self._given = bytes.fromhex(match.group(1))
        self._macs = [
            hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256) for secret in secrets
        ]

    def update(self, chunk: bytes) -> None:
        """Hash the next piece of the body under every secret."""
        for mac in self._macs:
            mac.update(chunk)

    def verify(self) -> None:
        """Accept the body fed so far if the header matches it under any secret.

        Raises:
            SignatureError: no secret matches.
        """
        # Compare against every secret so the time taken does not depend on which one matched.
        matches = [hmac.compare_digest(self._given, mac.digest()) for mac in self._macs]
        if not any(matches):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def _digest(body: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
