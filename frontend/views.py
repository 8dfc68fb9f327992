"""The frontend's routes and error handlers: verify, parse, filter, enqueue, answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import IO, Any

from flask import Blueprint, Response, g, jsonify, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from common.envelope import utc_now
from common.packing import MessageTooLarge, pack
from common.queue import QueueError, QueueUnavailable
from frontend.delivery import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    InvalidDelivery,
    Route,
    UnsupportedMediaType,
    parse_delivery,
    require_media_type,
    rule_for,
)
from frontend.framing import AGE_HEADER
from frontend.signature import SIGNATURE_HEADER, SignatureCheck, SignatureError
from frontend.spool import open_spool
from frontend.state import current_state

log = logging.getLogger(__name__)

blueprint = Blueprint("frontend", __name__)

# GitHub does not retry by itself; the header tells an operator redelivering by hand.
RETRY_AFTER_S = 30
# Unverified header values are logged only this long.
_LOGGED_HEADER_CHARS = 100
_CHUNK_BYTES = 64 * 1024
# An age the server reports beyond this is not an age: ignored.
_MAX_AGE_S = 3600.0

# What each route answers: status code and outcome.
ANSWERS: Mapping[Route, tuple[int, str]] = {
    Route.QUEUE: (202, "queued"),
    Route.PONG: (200, "pong"),
    Route.IGNORE: (200, "ignored"),
}


@blueprint.get("/health")
def health() -> Response:
    """Liveness: the process answers; nothing else is touched."""
    return jsonify(status="healthy")


@blueprint.get("/ready")
def ready() -> Response:
    """Readiness: the queue answers."""
    current_state().sender.ping()
    return jsonify(status="ready")


@blueprint.post("/webhook")
def receive_webhook() -> Response:
    """Receive one GitHub delivery; 202 only once the queue has accepted its message."""
    _begin_delivery_log()
    state = current_state()
    deadline = g.arrived + state.settings.answer_deadline_s
    if time.monotonic() >= deadline:  # it waited for a thread past its budget: shed at once
        raise QueueUnavailable("the request waited past its answer deadline: shed")
    content_type = require_media_type(request.content_type)
    stream = request.stream  # a declared length past the cap is a 413 here, before anything
    check = SignatureCheck(request.headers.get(SIGNATURE_HEADER), state.settings.webhook_secrets)
    body = _read_body(stream, check)
    check.verify()
    delivery = parse_delivery(dict(request.headers.items()), content_type, body, g.received_at)
    route = rule_for(delivery.event).route
    g.delivery_log["action"] = delivery.action
    if route is Route.QUEUE:
        message = pack(delivery)
        g.delivery_log.update(message_bytes=message.size_bytes, truncated=message.truncated)
        receipt = state.sender.send(message, timeout_s=deadline - time.monotonic())
        g.delivery_log["message_deliveries"] = receipt.deliveries
    status, outcome = ANSWERS[route]
    body_fields = {"status": outcome, "event": delivery.event, "delivery_id": delivery.delivery_id}
    return _answer(status, outcome, body_fields)


@blueprint.app_errorhandler(SignatureError)
def _bad_signature(error: SignatureError) -> Response:
    return _answer(401, "bad_signature", {"error": str(error)})


@blueprint.app_errorhandler(UnsupportedMediaType)
def _unsupported_media_type(error: UnsupportedMediaType) -> Response:
    return _answer(415, "unsupported_media_type", {"error": str(error)})


@blueprint.app_errorhandler(ParseException)
def _malformed_body(error: ParseException) -> Response:
    # gunicorn's parser refuses a body's framing (a chunk size, a trailer) as the app reads it.
    return _answer(400, "malformed_body", {"error": f"malformed request body: {error}"})


@blueprint.app_errorhandler(InvalidDelivery)
def _invalid_delivery(error: InvalidDelivery) -> Response:
    return _answer(400, "invalid", {"error": str(error)})


@blueprint.app_errorhandler(RequestEntityTooLarge)
def _body_too_large(error: RequestEntityTooLarge) -> Response:
    limit_mb = (request.max_content_length or 0) // (1024 * 1024)
    return _answer(413, "too_large", {"error": f"request body exceeds {limit_mb} MB"})


@blueprint.app_errorhandler(MessageTooLarge)
def _message_too_large(error: MessageTooLarge) -> Response:
    log.error("delivery does not fit in a queue message: %s", error)
    return _answer(413, "too_large", {"error": f"delivery too large to queue: {error}"})


@blueprint.app_errorhandler(QueueUnavailable)
def _queue_unavailable(error: QueueUnavailable) -> Response:
    log.warning("queue unavailable: %s", error)
    return _retry_later()


@blueprint.app_errorhandler(QueueError)
def _queue_error(error: QueueError) -> Response:
    # A send or ping never means MessageGone; should a queue say so anyway, GitHub may retry.
    log.error("queue failed unexpectedly: %s: %s", type(error).__name__, error)
    return _retry_later()


@blueprint.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    # Flask's own errors (404, 405, a client that hung up mid-body) keep their status and
    # headers (Allow) but answer JSON like every other error.
    name = (error.name or "error").lower()
    response = _answer(
        error.code or 500, name.replace(" ", "_"), {"error": f"{name}: {error.description}"}
    )
    for header, value in error.get_headers():
        if header.lower() != "content-type":
            response.headers[header] = value
    return response


@blueprint.after_request
def _log_delivery(response: Response) -> Response:
    fields: dict[str, Any] | None = g.pop("delivery_log", None)
    if fields is None:
        return response
    started: float = g.pop("started", time.monotonic())
    fields.update(
        outcome=g.pop("outcome", "error"),
        status=response.status_code,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    level = logging.INFO if response.status_code < 400 else logging.WARNING
    if response.status_code >= 500:
        level = logging.ERROR
    log.log(
        level,
        "delivery %s %s %s: %s %d",
        fields["delivery_id"] or "-",
        fields["event"] or "-",
        fields["action"] or "-",
        fields["outcome"],
        fields["status"],
        extra=fields,
    )
    return response


def _begin_delivery_log() -> None:
    g.started = time.monotonic()
    g.arrived = g.started - _age_s(request.headers.get(AGE_HEADER))
    g.received_at = utc_now()
    g.delivery_log = {
        "delivery_id": request.headers.get(DELIVERY_HEADER, "")[:_LOGGED_HEADER_CHARS],
        "event": request.headers.get(EVENT_HEADER, "")[:_LOGGED_HEADER_CHARS],
        "action": "",
    }


def _age_s(header: str | None) -> float:
    """How long ago the server says the request arrived; 0 without a server that says."""
    try:
        age_s = float(header or 0)
    except ValueError:
        return 0.0
    return age_s if 0 <= age_s < _MAX_AGE_S else 0.0


def _read_body(stream: IO[bytes], check: SignatureCheck) -> bytes:
    """The raw body, hashed as it streams in and spooled (`frontend.spool`) meanwhile.

    413 past MAX_CONTENT_LENGTH, with or without a Content-Length header; 400 if the server's
    parser refuses the body's framing as it is read.
    """
    limit = request.max_content_length
    read = 0
    with open_spool(request.content_length) as spool:
        while chunk := stream.read(_CHUNK_BYTES):
            check.update(chunk)
            spool.write(chunk)
            read += len(chunk)
        if request.content_length is None and limit is not None and read >= limit:
            # Werkzeug stops a streamed (chunked) body at the limit without an error; one more
            # byte from the server's stream tells whether the body went on past it.
            if request.environ["wsgi.input"].read(1):
                raise RequestEntityTooLarge()
        spool.seek(0)
        return spool.read()


def _retry_later() -> Response:
    response = _answer(503, "queue_unavailable", {"error": "queue unavailable, retry later"})
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def _answer(status: int, outcome: str, document: Mapping[str, Any]) -> Response:
    g.outcome = outcome
    response = jsonify(document)
    response.status_code = status
    return response
