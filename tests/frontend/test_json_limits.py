"""Bodies JSON allows but the queue must not carry: deep nesting, numbers beyond a double."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from common.envelope import decode
from common.json_limits import MAX_JSON_DEPTH, nesting_depth
from common.memory_queue import InMemoryQueue
from common.reduction import reduce_payload
from tests.frontend.deliveries import github_headers, post_webhook
from tools.payloads import workflow_job_payload, workflow_run_payload


def nested(depth: int) -> Any:
    """Arrays nested `depth` levels deep around a string (shallow enough for json.dumps)."""
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def _post(client: FlaskClient, text: str, event: str = "workflow_run") -> Any:
    body = text.encode("utf-8")
    return post_webhook(client, body, github_headers(body, event))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 500, 978])
def test_a_body_nested_past_the_cap_is_400(
    client: FlaskClient, memory_queue: InMemoryQueue, depth: int
) -> None:
    text = json.dumps(workflow_run_payload()).replace(  # the body nests 2 levels more
        '"display_title": ', f'"display_title": {"[" * depth}{"]" * depth}, "was_title": ', 1
    )

    response = _post(client, text)

    assert (response.status_code, response.json) == (
        400,
        {"error": f"body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels"},
    )
    assert memory_queue.sent_count == 0


def test_a_body_nested_to_the_cap_is_queued_without_the_nested_value(
    client: FlaskClient, memory_queue: InMemoryQueue
) -> None:
    payload = workflow_run_payload()
    payload["workflow_run"]["display_title"] = nested(MAX_JSON_DEPTH - 2)
    assert nesting_depth(payload) == MAX_JSON_DEPTH

    response = _post(client, json.dumps(payload))

    assert response.status_code == 202
    queued = decode(memory_queue.receive(1, 30)[0].content).payload
    assert "display_title" not in queued["workflow_run"]
    assert queued["workflow_run"]["name"] == payload["workflow_run"]["name"]


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E309"])
def test_a_number_beyond_a_double_is_400(
    client: FlaskClient, memory_queue: InMemoryQueue, number: str
) -> None:
    text = json.dumps(workflow_run_payload()).replace(
        '"run_number": ', f'"run_number": {number}, "was_run_number": ', 1
    )

    response = _post(client, text)

    assert (response.status_code, response.json) == (
        400,
        {"error": f"body is not valid JSON: number {number} is out of range"},
    )
    assert memory_queue.sent_count == 0


def test_reduction_keeps_scalars_and_lists_of_scalars_and_drops_what_is_nested() -> None:
    payload = workflow_job_payload("completed")
    job = payload["workflow_job"]
    job["name"] = {"nested": "object"}
    job["runner_name"] = ["a", "list"]
    job["labels"] = ["ubuntu-latest", ["nested"]]
    job["workflow_name"] = ["Build", None, 2]
    job["steps"] = [job["steps"][0], "not a step", [job["steps"][0]]]
    payload["repository"]["owner"] = "not an object"
    payload["sender"] = None

    reduced = reduce_payload("workflow_job", payload)

    assert "name" not in reduced["workflow_job"]
    assert reduced["workflow_job"]["runner_name"] == ["a", "list"]
    assert "labels" not in reduced["workflow_job"]
    assert reduced["workflow_job"]["workflow_name"] == ["Build", None, 2]
    assert reduced["workflow_job"]["steps"] == [
        reduce_payload("workflow_job", workflow_job_payload("completed"))["workflow_job"]["steps"][
            0
        ]
    ]
    assert (reduced["repository"]["owner"], reduced["sender"]) == ("not an object", None)
