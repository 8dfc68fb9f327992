"""One contract, two implementations: the in-memory fake and the Azure queue on Azurite."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from common.azure_clients import ClientTimeouts
from common.azure_queue import AzureQueue, create_queue
from common.memory_queue import InMemoryQueue
from common.queue import (
    MessageGone,
    MessageQueue,
    QueueMessage,
    QueueUnavailable,
    poison_record,
)
from common.settings import StorageSettings
from tests.conftest import unique_queue_name
from tools.azurite import Azurite


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "azurite", "azurite-oauth"])
def queue(request: pytest.FixtureRequest) -> Iterator[MessageQueue]:
    if request.param == "memory":
        yield InMemoryQueue()
        return
    # On "azurite-oauth" the queue and its poison queue run on a managed identity's tokens.
    fixture = "storage_settings" if request.param == "azurite" else "oauth_storage_settings"
    settings: StorageSettings = request.getfixturevalue(fixture)
    azure = create_queue(settings)
    yield azure
    azure.close()


def _read_poison(queue: MessageQueue) -> list[dict[str, object]]:
    if isinstance(queue, InMemoryQueue):
        return [json.loads(text) for text in queue.dead_letters]
    assert isinstance(queue, AzureQueue)
    poison = queue._poison.receive_messages(messages_per_page=32, visibility_timeout=30)
    return [json.loads(item.content) for item in poison]


def test_send_then_receive_returns_the_text_with_a_dequeue_count(queue: MessageQueue) -> None:
    message_id = queue.send("hello")

    received = queue.receive(32, visibility_timeout_s=30)

    assert [(m.id, m.content, m.dequeue_count) for m in received] == [(message_id, "hello", 1)]


def test_received_message_is_hidden_until_released(queue: MessageQueue) -> None:
    queue.send("one")
    [message] = queue.receive(32, visibility_timeout_s=30)

    assert queue.receive(32, visibility_timeout_s=30) == []
    queue.release(message)
    [again] = queue.receive(32, visibility_timeout_s=30)

    assert (again.id, again.dequeue_count) == (message.id, 2)


def test_receive_takes_at_most_the_batch_size(queue: MessageQueue) -> None:
    for index in range(5):
        queue.send(f"m{index}")

    first = queue.receive(3, visibility_timeout_s=30)
    rest = queue.receive(32, visibility_timeout_s=30)

    assert (len(first), len(rest)) == (3, 2)
    assert sorted(m.content for m in first + rest) == [f"m{i}" for i in range(5)]


def test_delete_removes_the_message_and_a_second_delete_is_gone(queue: MessageQueue) -> None:
    queue.send("bye")
    [message] = queue.receive(1, visibility_timeout_s=30)

    queue.delete(message)

    with pytest.raises(MessageGone):
        queue.delete(message)
    assert queue.receive(32, visibility_timeout_s=1) == []


def test_extend_gives_a_new_receipt_and_the_old_one_is_stale(queue: MessageQueue) -> None:
    queue.send("long work")
    [message] = queue.receive(1, visibility_timeout_s=30)

    extended = queue.extend(message, visibility_timeout_s=60)

    assert extended.pop_receipt != message.pop_receipt
    with pytest.raises(MessageGone):
        queue.delete(message)
    queue.delete(extended)


def test_extend_does_not_count_as_a_dequeue(queue: MessageQueue) -> None:
    queue.send("kept")
    [message] = queue.receive(1, visibility_timeout_s=30)
    extended = queue.extend(message, visibility_timeout_s=30)

    queue.release(extended)
    [again] = queue.receive(1, visibility_timeout_s=30)

    assert again.dequeue_count == 2


def test_dead_letter_copies_with_reason_then_deletes(queue: MessageQueue) -> None:
    queue.send("garbage")
    [message] = queue.receive(1, visibility_timeout_s=30)

    queue.dead_letter(message, "not an envelope")

    [record] = _read_poison(queue)
    assert (record["reason"], record["content"], record["message_id"]) == (
        "not an envelope",
        "garbage",
        message.id,
    )
    assert record["source_queue"] == queue.name
    assert queue.receive(32, visibility_timeout_s=1) == []


def test_send_poison_copies_a_member_record_and_leaves_the_message(queue: MessageQueue) -> None:
    queue.send("pack of two")
    [message] = queue.receive(1, visibility_timeout_s=30)

    queue.send_poison(
        poison_record(message, "bad member", queue.name, datetime.now(UTC), (1, 2, "member"))
    )

    [record] = _read_poison(queue)
    assert (record["reason"], record["content"], record["member_index"]) == (
        "bad member",
        "member",
        1,
    )
    assert (record["member_count"], record["message_id"]) == (2, message.id)
    queue.delete(message)  # still ours: the member's copy did not touch it


def test_visibility_timeout_expiry_redelivers_on_the_fake() -> None:
    clock = _Clock()
    queue = InMemoryQueue(clock=clock)
    queue.send("x")
    [first] = queue.receive(1, visibility_timeout_s=10)

    clock.now += 11
    [second] = queue.receive(1, visibility_timeout_s=10)

    assert second.dequeue_count == 2
    with pytest.raises(MessageGone):
        queue.delete(first)


@pytest.mark.azurite
def test_visibility_timeout_expiry_redelivers_on_azurite(storage_settings: StorageSettings) -> None:
    queue = create_queue(storage_settings)
    queue.send("x")
    [first] = queue.receive(1, visibility_timeout_s=1)

    deadline = time.monotonic() + 10
    received: list[QueueMessage] = []
    while not received and time.monotonic() < deadline:
        time.sleep(0.2)
        received = queue.receive(1, visibility_timeout_s=30)

    assert [m.dequeue_count for m in received] == [2]
    with pytest.raises(MessageGone):
        queue.delete(first)


@pytest.mark.azurite
def test_queue_is_created_on_first_send_when_missing(azurite: Azurite) -> None:
    settings = StorageSettings(azurite.connection_string, None, unique_queue_name("lazy"))
    queue = AzureQueue(settings)  # no ensure_queues: the send must create it

    queue.send("first")

    assert [m.content for m in queue.receive(1, visibility_timeout_s=30)] == ["first"]


@pytest.mark.azurite
def test_stopped_azurite_is_unavailable_within_the_bound(private_azurite: Azurite) -> None:
    settings = StorageSettings(private_azurite.connection_string, None, unique_queue_name())
    queue = create_queue(settings, ClientTimeouts(connection_timeout_s=1, read_timeout_s=1))
    queue.send("before")
    private_azurite.stop()

    started = time.monotonic()
    with pytest.raises(QueueUnavailable):
        queue.send("during")

    assert time.monotonic() - started < 5
