"""One contract per role, two implementations: the in-memory fake and the Azure queue on Azurite."""

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
    QueueConsumer,
    QueueMessage,
    QueueProducer,
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


Implementation = InMemoryQueue | AzureQueue


@pytest.fixture(params=["memory", "azurite", "azurite-oauth", "azurite-sdk-put"])
def queue(request: pytest.FixtureRequest) -> Iterator[Implementation]:
    """Each implementation in turn, over a queue of this test's own.

    The Azure queue puts on urllib3 (`common/queue_put.py`) with the account key or, on
    "azurite-oauth", a managed identity's tokens; "azurite-sdk-put" puts through the SDK.
    """
    if request.param == "memory":
        yield InMemoryQueue()
        return
    fixture = "oauth_storage_settings" if request.param == "azurite-oauth" else "storage_settings"
    settings: StorageSettings = request.getfixturevalue(fixture)
    azure = create_queue(settings, rest_put=request.param != "azurite-sdk-put")
    # The put each case names is the one it tests (a proxy variable would move it to the SDK).
    assert (azure._put is None) == (request.param == "azurite-sdk-put")
    yield azure
    azure.close()


# Each role's tests see the queue only through that role's interface, which both
# implementations must satisfy (mypy checks these two returns).
@pytest.fixture
def producer(queue: Implementation) -> QueueProducer:
    """The queue as the frontend sees it."""
    return queue


@pytest.fixture
def consumer(queue: Implementation) -> QueueConsumer:
    """The same queue as the backend sees it."""
    return queue


def _read_poison(queue: Implementation) -> list[dict[str, object]]:
    if isinstance(queue, InMemoryQueue):
        return [json.loads(text) for text in queue.dead_letters]
    poison = queue._poison.receive_messages(messages_per_page=32, visibility_timeout=30)
    return [json.loads(item.content) for item in poison]


# The producer: send and ping.


def test_a_sent_message_is_received_with_its_text_and_id(
    producer: QueueProducer, consumer: QueueConsumer
) -> None:
    # XML's own characters and text beyond ASCII travel as they are.
    text = "hello <MessageText>&amp; \"x\" 'y' ]]> é ✓ \U0001f680"
    message_id = producer.send(text)

    received = consumer.receive(32, visibility_timeout_s=30)

    assert [(m.id, m.content, m.dequeue_count) for m in received] == [(message_id, text, 1)]


def test_a_reachable_queue_answers_a_ping(producer: QueueProducer) -> None:
    producer.ping()  # raises QueueUnavailable unless the queue answers


def test_an_unreachable_queue_is_unavailable_to_send_and_ping_on_the_fake() -> None:
    queue = InMemoryQueue()
    queue.unavailable = True

    with pytest.raises(QueueUnavailable):
        queue.send("during")
    with pytest.raises(QueueUnavailable):
        queue.ping()


# The consumer: receive, delete, extend, release, dead-letter, send a poison record.


def test_received_message_is_hidden_until_released(
    producer: QueueProducer, consumer: QueueConsumer
) -> None:
    producer.send("one")
    [message] = consumer.receive(32, visibility_timeout_s=30)

    assert consumer.receive(32, visibility_timeout_s=30) == []
    consumer.release(message)
    [again] = consumer.receive(32, visibility_timeout_s=30)

    assert (again.id, again.dequeue_count) == (message.id, 2)


def test_receive_takes_at_most_the_batch_size(
    producer: QueueProducer, consumer: QueueConsumer
) -> None:
    for index in range(5):
        producer.send(f"m{index}")

    first = consumer.receive(3, visibility_timeout_s=30)
    rest = consumer.receive(32, visibility_timeout_s=30)

    assert (len(first), len(rest)) == (3, 2)
    assert sorted(m.content for m in first + rest) == [f"m{i}" for i in range(5)]


def test_delete_removes_the_message_and_a_second_delete_is_gone(
    producer: QueueProducer, consumer: QueueConsumer
) -> None:
    producer.send("bye")
    [message] = consumer.receive(1, visibility_timeout_s=30)

    consumer.delete(message)

    with pytest.raises(MessageGone):
        consumer.delete(message)
    assert consumer.receive(32, visibility_timeout_s=1) == []


def test_extend_gives_a_new_receipt_and_the_old_one_is_stale(
    producer: QueueProducer, consumer: QueueConsumer
) -> None:
    producer.send("long work")
    [message] = consumer.receive(1, visibility_timeout_s=30)

    extended = consumer.extend(message, visibility_timeout_s=60)

    assert extended.pop_receipt != message.pop_receipt
    with pytest.raises(MessageGone):
        consumer.delete(message)
    consumer.delete(extended)


def test_extend_does_not_count_as_a_dequeue(
    producer: QueueProducer, consumer: QueueConsumer
) -> None:
    producer.send("kept")
    [message] = consumer.receive(1, visibility_timeout_s=30)
    extended = consumer.extend(message, visibility_timeout_s=30)

    consumer.release(extended)
    [again] = consumer.receive(1, visibility_timeout_s=30)

    assert again.dequeue_count == 2


def test_dead_letter_copies_with_reason_then_deletes(
    queue: Implementation, producer: QueueProducer, consumer: QueueConsumer
) -> None:
    producer.send("garbage")
    [message] = consumer.receive(1, visibility_timeout_s=30)

    consumer.dead_letter(message, "not an envelope")

    [record] = _read_poison(queue)
    assert (record["reason"], record["content"], record["message_id"]) == (
        "not an envelope",
        "garbage",
        message.id,
    )
    assert record["source_queue"] == consumer.name
    assert consumer.receive(32, visibility_timeout_s=1) == []


def test_send_poison_copies_a_member_record_and_leaves_the_message(
    queue: Implementation, producer: QueueProducer, consumer: QueueConsumer
) -> None:
    producer.send("pack of two")
    [message] = consumer.receive(1, visibility_timeout_s=30)

    consumer.send_poison(
        poison_record(message, "bad member", consumer.name, datetime.now(UTC), (1, 2, "member"))
    )

    [record] = _read_poison(queue)
    assert (record["reason"], record["content"], record["member_index"]) == (
        "bad member",
        "member",
        1,
    )
    assert (record["member_count"], record["message_id"]) == (2, message.id)
    consumer.delete(message)  # still ours: the member's copy did not touch it


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
def test_stopped_azurite_is_unavailable_to_send_and_ping_within_the_bound(
    private_azurite: Azurite,
) -> None:
    settings = StorageSettings(private_azurite.connection_string, None, unique_queue_name())
    queue = create_queue(settings, ClientTimeouts(connection_timeout_s=1, read_timeout_s=1))
    producer: QueueProducer = queue
    producer.send("before")
    private_azurite.stop()

    for call in (lambda: producer.send("during"), producer.ping):
        started = time.monotonic()
        with pytest.raises(QueueUnavailable):
            call()
        assert time.monotonic() - started < 5
    queue.close()
