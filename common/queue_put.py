"""Put Message on urllib3: the one queue call made for every message, without the SDK's pipeline.

Why it exists: the frontend makes one Put Message per queue message, and on a small host the
SDK's call was what bounded it. CPU of the calling process per put of a 2.5 KB message, one
thread, against Azurite (azure-storage-queue 12.18.1, `time.process_time()` over 2,000 puts):
1.1 to 2.5 ms through `QueueClient.send_message` (its policies, requests and the response's
XML models), 0.28 ms here. In the frontend under full load that was 2.1 to 2.8 ms of CPU per
delivery against 1.3 to 1.4 ms: docs/benchmark.md.

It keeps what the SDK's call does: the same request (`POST <queue>/messages?messagettl=-1`
with the XML body and the client's API version), the same authentication (the account key's
SharedKey signature, or an Entra ID token for Azure Storage), the time bounds and retries of
`ClientTimeouts`, and the CA bundle `common.http` reads. Every other queue call (create,
receive, ping, poison) stays on the SDK, and `rest_put_for` says when this one does too: with
a proxy set, or a credential of another kind (a SAS).
https://learn.microsoft.com/en-us/rest/api/storageservices/put-message
https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-shared-key
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable, Mapping
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from common.azure_clients import ClientTimeouts
from common.http import ca_bundle, uses_proxy
from common.tokens import BearerToken

# The scope of Entra ID tokens for Azure Storage, as the SDK asks for it.
STORAGE_SCOPE = "https://storage.azure.com/.default"
CONTENT_TYPE = "application/xml"
# Answers worth another attempt, as the SDK's retry policy has them: the service's timeouts
# and outages. Anything else (403, 404, 400) would answer the same again.
RETRIED_STATUSES = frozenset({408, 500, 502, 503, 504})
USER_AGENT = "github-telemetry (urllib3)"
_MAX_REASON_CHARS = 200


class QueueClientParts(Protocol):
    """What `rest_put_for` reads of an azure-storage-queue `QueueClient`: public attributes."""

    @property
    def url(self) -> str: ...

    @property
    def api_version(self) -> str: ...

    @property
    def credential(self) -> Any: ...


class PutRefused(Exception):
    """The service answered the put with an error: its status and `x-ms-error-code`."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(f"{status} {code or reason}")
        self.status = status
        self.code = code
        self.reason = reason


class PutUnreachable(Exception):
    """The put got no answer: refused connection, timeout, reset or a TLS failure."""


class SharedKey:
    """The `Authorization` value of a request signed with the account key (SharedKey scheme)."""

    def __init__(self, account_name: str, account_key: str) -> None:
        self.account_name = account_name
        # binascii.Error for a key that is not base64: `rest_put_for` leaves it to the SDK,
        # whose error names the problem. Decoded as the SDK decodes it (whitespace skipped).
        self._key = base64.b64decode(account_key)

    def authorization(
        self, content_length: int, ms_headers: Mapping[str, str], path: str, query: str
    ) -> str:
        """Sign a POST of `content_length` bytes of XML to `path?query` with these x-ms- headers."""
        canonical_headers = "".join(f"{name}:{ms_headers[name]}\n" for name in sorted(ms_headers))
        parameters = "".join(
            f"\n{name.lower()}:{value}"
            for name, value in sorted(part.split("=", 1) for part in query.split("&") if part)
        )
        # VERB, Content-Encoding, -Language, -Length, -MD5, -Type, Date, If-Modified-Since,
        # If-Match, If-None-Match, If-Unmodified-Since, Range; then the x-ms- headers and the
        # resource (the path already starts with the account on the emulator's path style).
        signed = "\n".join(
            ["POST", "", "", str(content_length or ""), "", CONTENT_TYPE, "", "", "", "", "", ""]
        )
        resource = f"/{self.account_name}{path}{parameters}"
        text = f"{signed}\n{canonical_headers}{resource}"
        digest = hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).digest()
        return f"SharedKey {self.account_name}:{base64.b64encode(digest).decode('ascii')}"


class Bearer:
    """The `Authorization` value of a request carrying an Entra ID token."""

    def __init__(self, token: BearerToken) -> None:
        self._token = token

    def authorization(
        self, content_length: int, ms_headers: Mapping[str, str], path: str, query: str
    ) -> str:
        """`Bearer <token>`, whatever the request (a token is not bound to one)."""
        return self._token.header()


class RestPut:
    """Put Message to one queue over a urllib3 connection pool; safe to share between threads."""

    def __init__(
        self,
        queue_url: str,
        api_version: str,
        authorize: Callable[[int, Mapping[str, str], str, str], str],
        timeouts: ClientTimeouts,
        connections: int,
        ca_certs: str | None = None,
    ) -> None:
        """`authorize(content_length, x_ms_headers, path, query)` gives the Authorization value.

        `ca_certs` is a CA bundle file or, as requests also takes it, a folder of certificates.
        """
        parts = urlsplit(queue_url)
        self._path = f"{parts.path.rstrip('/')}/messages"
        self._api_version = api_version
        self._authorize = authorize
        self._attempts = 1 + max(timeouts.retries, 0)
        self._backoff_s = timeouts.retry_backoff_s
        self._pool = urllib3.connection_from_url(
            f"{parts.scheme}://{parts.netloc}",
            maxsize=connections,
            timeout=urllib3.Timeout(
                connect=timeouts.connection_timeout_s, read=timeouts.read_timeout_s
            ),
            retries=False,
            **_verification(ca_certs),
        )

    def put(self, text: str, time_to_live_s: int) -> str:
        """Put one message; its id.

        Raises:
            PutRefused: the service answered an error (after the retries, for a retried one).
            PutUnreachable: no answer within the timeouts, after the retries.
            TokenUnavailable: no Entra ID token could be had.
        """
        body = _message_xml(text)
        query = f"messagettl={time_to_live_s}"
        failure: Exception = PutUnreachable("no attempt was made")
        for attempt in range(self._attempts):
            if attempt and self._backoff_s > 0:
                time.sleep(self._backoff_s)
            try:
                response = self._pool.urlopen(
                    "POST",
                    f"{self._path}?{query}",
                    body=body,
                    headers=self._headers(len(body), query),
                    retries=False,
                    redirect=False,
                    preload_content=True,
                )
            except urllib3.exceptions.HTTPError as error:
                first_line = (str(error).splitlines() or [""])[0][:_MAX_REASON_CHARS]
                failure = PutUnreachable(f"{type(error).__name__}: {first_line}")
                continue
            if response.status == 201:
                return _message_id(response.data)
            failure = PutRefused(
                response.status,
                response.headers.get("x-ms-error-code", ""),
                (response.reason or "")[:_MAX_REASON_CHARS],
            )
            if response.status not in RETRIED_STATUSES:
                raise failure
        raise failure

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()

    def _headers(self, content_length: int, query: str) -> dict[str, str]:
        ms_headers = {
            "x-ms-client-request-id": str(uuid.uuid4()),
            "x-ms-date": formatdate(usegmt=True),
            "x-ms-version": self._api_version,
        }
        return {
            **ms_headers,
            "Content-Type": CONTENT_TYPE,
            "Content-Length": str(content_length),
            "Accept": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
            "Authorization": self._authorize(content_length, ms_headers, self._path, query),
        }


def rest_put_for(
    client: QueueClientParts,
    timeouts: ClientTimeouts,
    connections: int,
    environ: Mapping[str, str] | None = None,
) -> tuple[RestPut | None, str]:
    """A RestPut to the queue of `client` (a QueueClient), or None and why the SDK puts instead.

    Read from the client's public attributes: `url`, `api_version`, and `credential` (the
    account key's, with `account_name` and `account_key`, or a token credential).
    """
    environ = os.environ if environ is None else environ
    if uses_proxy(environ):
        return None, "a proxy is set, which the SDK's transport honours"
    url: str = client.url
    credential = client.credential
    bundle = ca_bundle(environ) or DEFAULT_CA_BUNDLE_PATH
    ca_certs = bundle if url.startswith("https://") else None
    signer: SharedKey | Bearer
    if hasattr(credential, "account_name") and hasattr(credential, "account_key"):
        try:
            signer = SharedKey(credential.account_name, credential.account_key)
        except (binascii.Error, ValueError):
            return None, "the account key is not base64"
        how = "the account key"
    elif hasattr(credential, "get_token") and url.startswith("https://"):
        signer = Bearer(BearerToken(credential, STORAGE_SCOPE, "the storage queue"))
        how = "Entra ID tokens"
    else:
        return None, "the credential is neither an account key nor a token credential over HTTPS"
    put = RestPut(url, client.api_version, signer.authorization, timeouts, connections, ca_certs)
    return put, f"signed with {how}"


def _verification(ca_certs: str | None) -> dict[str, str]:
    """urllib3's certificate options for a CA bundle file or folder; none over plain HTTP."""
    if ca_certs is None:
        return {}
    where = "ca_cert_dir" if os.path.isdir(ca_certs) else "ca_certs"
    return {where: ca_certs, "cert_reqs": "CERT_REQUIRED"}


def _message_xml(text: str) -> bytes:
    # The body the SDK sends: the text escaped as XML character data.
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>"
        f"{escape(text)}</MessageText></QueueMessage>"
    ).encode()


def _message_id(data: bytes) -> str:
    """The MessageId of a Put Message answer."""
    try:
        message_id = ElementTree.fromstring(data).findtext("./QueueMessage/MessageId")
    except ElementTree.ParseError as error:
        raise PutRefused(201, "", f"unreadable answer: {error}") from None
    if not message_id:
        raise PutRefused(201, "", "the answer names no MessageId")
    return message_id
