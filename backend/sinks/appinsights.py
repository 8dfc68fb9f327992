"""Application Insights sink: custom events built with opencensus-ext-azure, POSTed per batch.

opencensus's own exporters queue items on a background thread, spill failures to local files
and flush at exit; none of that tells the worker whether a batch was accepted. This sink uses
only opencensus's connection-string parsing and data model, and posts each batch itself so
the answer decides the messages' fate.
https://learn.microsoft.com/en-us/azure/azure-monitor/app/data-model-complete#custom-event
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from opencensus.ext.azure.common import parse_connection_string
from opencensus.ext.azure.common.protocol import Data, Envelope, Event
from opencensus.ext.azure.common.utils import azure_monitor_context, validate_instrumentation_key

from backend.sinks.base import ExportResult, Rejection, format_time
from backend.sinks.entra import monitor_token
from backend.sinks.ingestion import Answer, classify
from backend.telemetry import limits, window
from backend.telemetry.item import TelemetryItem
from common import http
from common.envelope import utc_now
from common.tokens import BearerToken, TokenCredential, TokenUnavailable

log = logging.getLogger(__name__)

BACKEND_ROLE_NAME = "github-telemetry-backend"
DEFAULT_INGESTION_ENDPOINT = "https://dc.services.visualstudio.com"
EVENT_ENVELOPE_NAME = "Microsoft.ApplicationInsights.Event"
EVENT_BASE_TYPE = "EventData"
TRACK_PATH = "/v2.1/track"
# One request carries at most this many items and (unless one item is larger) bytes; a batch
# of 32 jobs of 1,000 steps is some 32,000 items, far more than one request should hold.
MAX_ITEMS_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 1024 * 1024
# `ai.internal.sdkVersion`: this product and its version (pyproject.toml's, checked by a test).
PRODUCT_NAME = "github-telemetry"
PRODUCT_VERSION = "0.1.0"
SDK_VERSION = f"{PRODUCT_NAME}:{PRODUCT_VERSION}"
# A configuration error is logged (ERROR) once, then again at most this often while it lasts.
CONFIGURATION_LOG_INTERVAL_S = 300.0
# A single item the service still finds too large is halved down to this size, then refused.
MIN_ITEM_BYTES = 1024
# Regional ingestion endpoints may redirect (307/308, the body kept); followed this many times.
MAX_REDIRECTS = 10
REDIRECT_STATUS = frozenset({307, 308})


@dataclass(frozen=True)
class IngestionTarget:
    """Where and as whom to send: key, endpoint, and any Entra ID audience (`AADAudience`)."""

    instrumentation_key: str
    endpoint: str
    audience: str | None = None

    @property
    def track_url(self) -> str:
        """The batch ingestion URL."""
        return self.endpoint.rstrip("/") + TRACK_PATH

    def __repr__(self) -> str:
        # The instrumentation key is a secret: keep it out of logs and tracebacks.
        return f"IngestionTarget(endpoint={self.endpoint!r})"


def parse_target(connection_string: str) -> IngestionTarget:
    """Read the key and `IngestionEndpoint` from a connection string.

    Raises:
        ValueError: the connection string is malformed or its key is not a GUID (the message
            never contains the string itself).
    """
    try:
        parts = parse_connection_string(connection_string.strip().rstrip(";"))
        key = str(parts.get("instrumentationkey") or "")
        validate_instrumentation_key(key)
    except ValueError:
        raise ValueError(
            "APPLICATIONINSIGHTS_CONNECTION_STRING is malformed: expected "
            "'InstrumentationKey=<guid>;IngestionEndpoint=https://...'"
        ) from None
    endpoint = str(parts.get("ingestionendpoint") or DEFAULT_INGESTION_ENDPOINT)
    audience = str(parts.get("aadaudience") or "") or None
    return IngestionTarget(instrumentation_key=key, endpoint=endpoint, audience=audience)


def is_loopback(url: str) -> bool:
    """True if `url`'s host is this machine (a local stand-in)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def requests_of(
    parts: Sequence[tuple[int, bytes]],
    max_items: int = MAX_ITEMS_PER_REQUEST,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> list[list[tuple[int, bytes]]]:
    """Split serialised items, in order, into requests within both bounds (at least one each)."""
    requests_: list[list[tuple[int, bytes]]] = []
    size = 0
    for part in parts:
        current = requests_[-1] if requests_ else None
        if current is None or len(current) >= max_items or size + len(part[1]) + 1 > max_bytes:
            requests_.append([part])
            size = len(part[1]) + 2
        else:
            current.append(part)
            size += len(part[1]) + 1
    return requests_


def base_tags(role_name: str) -> dict[str, str]:
    """Context tags on every event: opencensus's device tags, this product, our role name."""
    tags = {key: str(value) for key, value in azure_monitor_context.items() if value is not None}
    tags["ai.internal.sdkVersion"] = SDK_VERSION
    tags["ai.cloud.role"] = role_name
    tags["ai.cloud.roleInstance"] = platform.node()
    return tags


def to_envelope(item: TelemetryItem, instrumentation_key: str, tags: dict[str, str]) -> Any:
    """One custom event (`customEvents` table) in the ingestion schema."""
    event_tags = dict(tags)
    if item.operation_id:
        event_tags["ai.operation.id"] = item.operation_id
    if item.operation_name:
        event_tags["ai.operation.name"] = item.operation_name
    if item.parent_id:
        event_tags["ai.operation.parentId"] = item.parent_id
    event = Event(
        name=item.name,
        properties=dict(item.properties),
        measurements=dict(item.measurements),
    )
    return Envelope(
        ver=1,
        iKey=instrumentation_key,
        name=EVENT_ENVELOPE_NAME,
        time=format_time(item.timestamp),
        tags=event_tags,
        data=Data(baseData=event, baseType=EVENT_BASE_TYPE),
    )


@dataclass(frozen=True)
class Part:
    """One item ready to send: its position in the exported batch, the item, its bytes."""

    index: int
    item: TelemetryItem
    data: bytes


def merge(results: Sequence[ExportResult]) -> ExportResult:
    """One result of several requests' results (positions already in the batch's terms)."""
    details = [result.detail for result in results if result.detail]
    hints = [result.retry_after_s for result in results if result.retry_after_s is not None]
    return ExportResult(
        accepted=tuple(sorted(i for result in results for i in result.accepted)),
        retryable=tuple(sorted(i for result in results for i in result.retryable)),
        rejected=tuple(
            sorted(
                (rejection for result in results for rejection in result.rejected),
                key=lambda rejection: rejection.index,
            )
        ),
        detail="; ".join(dict.fromkeys(details)),
        retry_after_s=max(hints) if hints else None,
    )


def failed_whole(result: ExportResult) -> bool:
    """Nothing got through and nothing was decided: the service is not taking requests."""
    return not result.accepted and not result.rejected and bool(result.retryable)


class AppInsightsSink:
    """Posts each batch to `<IngestionEndpoint>/v2.1/track` and reports the per-item answer.

    Before sending, each item is placed in the accepted time window (`window.place`, at the
    export time) and brought within the size limits (`limits.within_limits`).
    """

    def __init__(
        self,
        connection_string: str,
        timeout_s: float = 10.0,
        role_name: str = BACKEND_ROLE_NAME,
        session: requests.Session | None = None,
        now: Callable[[], datetime] = utc_now,
        clock: Callable[[], float] = time.monotonic,
        credential: TokenCredential | None = None,
    ) -> None:
        self._target = parse_target(connection_string)
        self._token: BearerToken | None = None
        if credential is not None:
            # A bearer token is as good as a password for its lifetime: never in clear text,
            # except to a stand-in on this machine.
            if urlsplit(self._target.endpoint).scheme != "https" and not is_loopback(
                self._target.endpoint
            ):
                raise ValueError(
                    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING needs an https IngestionEndpoint "
                    "in APPLICATIONINSIGHTS_CONNECTION_STRING: a token is never sent in clear text"
                )
            self._token = monitor_token(credential, self._target.audience)
        self._timeout_s = timeout_s
        self._tags = base_tags(role_name)
        self._session = session or http.session()
        self._now = now
        self._clock = clock
        self._logged_cause = ""
        self._logged_at = 0.0
        # Proxies from the environment are honoured (trust_env); redirects (307/308) are
        # followed with the body and the token (`_post_following`).

    @property
    def endpoint(self) -> str:
        """The ingestion endpoint (not secret)."""
        return self._target.endpoint

    def export(self, items: Sequence[TelemetryItem]) -> ExportResult:
        """POST the batch in requests of bounded size; merge the per-item answers.

        An item that cannot be serialised is rejected (it would fail on every retry); once a
        request fails as a whole, the requests still to send are retryable without being sent,
        so one export waits for at most one timeout.
        """
        if not items:
            return ExportResult()
        exported_at = self._now()
        parts: list[Part] = []
        rejected: list[Rejection] = []
        for index, item in enumerate(items):
            try:
                placed = limits.within_limits(window.place(item, exported_at), self._size_of)
                parts.append(Part(index, placed, self._serialise(placed)))
            except (TypeError, ValueError) as error:  # UnicodeEncodeError is a ValueError
                rejected.append(Rejection(index, f"not serialisable: {type(error).__name__}"))
        results = [ExportResult(rejected=tuple(rejected))]
        by_index = {part.index: part for part in parts}
        failed = False  # a request got nothing through: send no more this time
        for request in requests_of([(part.index, part.data) for part in parts]):
            batch = [by_index[index] for index, _data in request]
            results.append(_held(batch) if failed else self._send(batch))
            failed = failed_whole(results[-1])
        return merge(results)

    def _size_of(self, item: TelemetryItem) -> int:
        return len(self._serialise(item))

    def _serialise(self, item: TelemetryItem) -> bytes:
        envelope = to_envelope(item, self._target.instrumentation_key, self._tags)
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def _send(self, parts: list[Part]) -> ExportResult:
        """Send `parts` in one request; halve a refused request, shrink a refused single item."""
        answer = self._post([part.data for part in parts])
        self._report(answer)
        if not answer.split:
            return _positioned(answer.result, parts)
        if len(parts) > 1:
            half = len(parts) // 2
            first = self._send(parts[:half])
            if failed_whole(first):
                return merge([first, _held(parts[half:])])
            return merge([first, self._send(parts[half:])])
        [part] = parts
        if answer.status == 400:
            reason = f"ingestion refused the item: 400 {answer.message}".rstrip()
            return ExportResult(rejected=(Rejection(part.index, reason),))
        smaller = len(part.data) // 2
        if smaller < MIN_ITEM_BYTES:
            reason = f"ingestion refused the item as too large (413) even at {len(part.data)} bytes"
            return ExportResult(rejected=(Rejection(part.index, reason),))
        shrunk = limits.shrink(part.item, self._size_of, smaller)
        log.warning("a %d-byte item was refused as too large: sent again shrunk", len(part.data))
        return self._send([Part(part.index, shrunk, self._serialise(shrunk))])

    def _post(self, envelopes: list[bytes]) -> Answer:
        """One track request of serialised envelopes; the answer per item, by position."""
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json; charset=utf-8",
        }
        if self._token is not None:
            try:
                headers["Authorization"] = self._token.header()
            except TokenUnavailable as error:
                cause = str(error)
                result = ExportResult.all_retryable(len(envelopes), cause)
                return Answer(result, configuration=cause)
        try:
            response = self._post_following(b"[" + b",".join(envelopes) + b"]", headers)
        except requests.RequestException as error:
            detail = f"ingestion unreachable: {type(error).__name__}"
            return Answer(ExportResult.all_retryable(len(envelopes), detail))
        with response:
            return classify(
                len(envelopes),
                response.status_code,
                response.content,
                response.headers.get("Retry-After"),
                self._now(),
            )

    def _post_following(self, data: bytes, headers: dict[str, str]) -> requests.Response:
        """POST to the track URL, following 307/308 here rather than in requests.

        requests drops `Authorization` when a redirect changes the host, which would turn a
        regional redirect into a 401; a token goes on to an https (or loopback) location only.
        """
        url = self._target.track_url
        for _ in range(MAX_REDIRECTS):
            response = self._session.post(
                url, data=data, headers=headers, timeout=self._timeout_s, allow_redirects=False
            )
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUS or not location:
                return response
            response.close()
            url = urljoin(url, location)
            if (
                "Authorization" in headers
                and urlsplit(url).scheme != "https"
                and not is_loopback(url)
            ):
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _report(self, answer: Answer) -> None:
        """Log a configuration error loudly: when it starts or changes, then once an interval."""
        cause = answer.configuration
        if not cause:
            self._logged_cause = ""
            return
        now = self._clock()
        if cause != self._logged_cause or now - self._logged_at >= CONFIGURATION_LOG_INTERVAL_S:
            log.error(
                "Application Insights refuses the telemetry, held until this is fixed: %s", cause
            )
            self._logged_cause, self._logged_at = cause, now

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()


def _positioned(result: ExportResult, parts: list[Part]) -> ExportResult:
    """`result` of one request with its positions turned into the batch's."""
    position = [part.index for part in parts]
    return ExportResult(
        accepted=tuple(position[i] for i in result.accepted),
        retryable=tuple(position[i] for i in result.retryable),
        rejected=tuple(Rejection(position[r.index], r.reason) for r in result.rejected),
        detail=result.detail,
        retry_after_s=result.retry_after_s,
    )


def _held(parts: list[Part]) -> ExportResult:
    """The parts not sent because an earlier request failed as a whole."""
    return ExportResult(retryable=tuple(part.index for part in parts))
