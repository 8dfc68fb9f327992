"""What the front door refuses under real gunicorn is a JSON 4xx, and nothing refused is queued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from common.azure_queue import AzureQueue
from common.settings import StorageSettings
from tests.conftest import unique_queue_name
from tests.frontend.attacks import Answer, exchange, post
from tests.frontend.deliveries import SECRET, github_headers, json_body
from tests.frontend.server import Frontend, frontend_environment, running_frontend
from tools.azurite import Azurite
from tools.payloads import workflow_job_payload

pytestmark = [pytest.mark.slow, pytest.mark.azurite]


@pytest.fixture(scope="module")
def door(
    azurite: Azurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Frontend, AzureQueue]]:
    """One gunicorn frontend for the module, and a reader of its queue."""
    home = tmp_path_factory.mktemp("door")
    storage = StorageSettings(azurite.connection_string, None, unique_queue_name("refusals"))
    env = frontend_environment(
        home,
        AZURE_STORAGE_CONNECTION_STRING=azurite.connection_string,
        AZURE_STORAGE_QUEUE_NAME=storage.queue_name,
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
    )
    reader = AzureQueue(storage)
    reader.ensure_queues()
    with running_frontend(env, home) as frontend:
        yield frontend, reader
    reader.close()


def _queued(reader: AzureQueue) -> int:
    """How many messages the queue held; they are deleted, so each test counts its own."""
    messages = reader.receive(32, visibility_timeout_s=30)
    for message in messages:
        reader.delete(message)
    return len(messages)


def _head(*lines: str) -> bytes:
    return ("\r\n".join(["POST /webhook HTTP/1.1", "Host: x", *lines]) + "\r\n\r\n").encode()


_CHUNKED = ("Content-Type: application/json", "Transfer-Encoding: chunked")

MALFORMED_CHUNKED = {
    "bad size": b"zz\r\nhello\r\n0\r\n\r\n",
    "negative size": b"-5\r\nhello\r\n0\r\n\r\n",
    "0x prefix": b"0x5\r\nhello\r\n0\r\n\r\n",
    "NUL in an extension": b"5;ext=\x00\r\nhello\r\n0\r\n\r\n",
    "bare LF after the size": b"5\nhello\r\n0\r\n\r\n",
    "bare LF after the data": b"5\r\nhello\n0\r\n\r\n",
    "no CRLF after the data": b"5\r\nhelloX0\r\n\r\n",
    "bad trailer": b"5\r\nhello\r\n0\r\nno colon here\r\n\r\n",
    "size past 64 bits": b"1" * 20 + b"\r\nhello\r\n0\r\n\r\n",
    "size over the cap": b"7fffffff\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("body", MALFORMED_CHUNKED.values(), ids=MALFORMED_CHUNKED.keys())
def test_a_malformed_chunked_body_is_a_json_4xx(
    door: tuple[Frontend, AzureQueue], body: bytes
) -> None:
    frontend, _ = door

    answer = exchange(frontend.port, _head(*_CHUNKED) + body)

    assert 400 <= answer.status < 500, answer
    assert answer.headers["content-type"] == "application/json"
    assert isinstance(answer.document["error"], str)


GUNICORN_REFUSALS = {
    "bad request line": (b"POST /webhook HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    "URI too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "URI past gunicorn's limit": (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "header fields too large": (_head("X-Big: " + "b" * 40_000), 431),
    "a field past gunicorn's limit": (_head("X-Big: " + "b" * 9000), 431),
    "bare LF in the head": (b"POST /webhook HTTP/1.1\nHost: x\n\n", 400),
    "two Content-Length": (_head("Content-Length: 1", "Content-Length: 2") + b"ab", 400),
    "bad Content-Length": (_head("Content-Length: 1x") + b"ab", 400),
    "body over 25 MB": (_head("Content-Length: 26214401"), 413),
    "invalid header name": (_head("Bad Name: x", "Content-Length: 0"), 400),
}


@pytest.mark.parametrize(
    ("raw", "status"), GUNICORN_REFUSALS.values(), ids=GUNICORN_REFUSALS.keys()
)
def test_what_the_http_parser_refuses_is_a_json_4xx(
    door: tuple[Frontend, AzureQueue], raw: bytes, status: int
) -> None:
    frontend, _ = door

    answer = exchange(frontend.port, raw)

    assert (answer.status, answer.headers["content-type"]) == (status, "application/json")
    assert isinstance(answer.document["error"], str)


@pytest.mark.parametrize("header", ["X-GitHub-Delivery", "X-GitHub-Event", "X-Hub-Signature-256"])
def test_a_header_given_twice_is_a_400_and_nothing_is_queued(
    door: tuple[Frontend, AzureQueue], header: str
) -> None:
    frontend, reader = door
    body = json_body(workflow_job_payload("completed"))
    headers = github_headers(body, "workflow_job")
    lines = [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"{header}: {headers[header]}", f"Content-Length: {len(body)}"]

    answer = exchange(frontend.port, _head(*lines) + body)

    assert (answer.status, answer.document) == (
        400,
        {"error": f"the {header.lower()} header is given more than once"},
    )
    assert _queued(reader) == 0


def _job(**changes: Any) -> dict[str, Any]:
    payload = workflow_job_payload("completed")
    for path, value in changes.items():
        *parents, key = path.split("__")
        target = payload
        for parent in parents:
            target = target[parent]
        target[key] = value
    return payload


IMPOSSIBLE = {
    "action with a slash": _job(action="completed/../x"),
    "action with # and ?": _job(action="a#b?c"),
    "action with a NUL": _job(action="comp\0leted"),
    "action with a lone surrogate": _job(action="comp\ud800"),
    "action of 10,000 characters": _job(action="a" * 10_000),
    "action in capitals": _job(action="Completed"),
    "job id of 4,000 digits": _job(workflow_job__id=int("9" * 4000)),
    "job id past 64 bits": _job(workflow_job__id=2**63),
    "job id of zero": _job(workflow_job__id=0),
    "negative run id": _job(workflow_job__run_id=-1),
    "repository name with a NUL": _job(repository__full_name="octo/\0"),
    "a lone surrogate elsewhere": _job(workflow_job__name="build \udfff"),
}


@pytest.mark.parametrize("payload", IMPOSSIBLE.values(), ids=IMPOSSIBLE.keys())
def test_a_signed_payload_github_never_sends_is_a_400_and_not_queued(
    door: tuple[Frontend, AzureQueue], payload: dict[str, Any]
) -> None:
    frontend, reader = door
    body = json_body(payload)

    answer: Answer = post(frontend.port, body, github_headers(body, "workflow_job", SECRET))

    assert answer.status == 400, answer
    assert answer.document["error"].startswith(("workflow_job payload", "body "))
    assert _queued(reader) == 0


def test_a_well_formed_action_github_may_add_later_is_queued(
    door: tuple[Frontend, AzureQueue],
) -> None:
    frontend, reader = door
    body = json_body(_job(action="requeued_by_policy"))

    answer = post(frontend.port, body, github_headers(body, "workflow_job"))

    assert answer.status == 202
    assert _queued(reader) == 1


def test_a_client_claim_of_age_is_ignored(door: tuple[Frontend, AzureQueue]) -> None:
    # The server states each request's age itself; a client claiming one is overruled.
    frontend, reader = door
    body = json_body(workflow_job_payload("completed"))
    headers = {**github_headers(body, "workflow_job"), "X-Frontend-Request-Age": "3000"}

    answer = post(frontend.port, body, headers)

    assert answer.status == 202
    assert _queued(reader) == 1


def test_a_body_sent_after_100_continue_is_served(door: tuple[Frontend, AzureQueue]) -> None:
    frontend, reader = door
    body = json_body(workflow_job_payload("completed"))
    lines = [f"{name}: {value}" for name, value in github_headers(body, "workflow_job").items()]
    lines += ["Expect: 100-continue", f"Content-Length: {len(body)}"]

    answer = exchange(frontend.port, _head(*lines) + body)

    assert answer.status == 202
    assert _queued(reader) == 1
