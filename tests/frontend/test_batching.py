"""The group committer: concurrent deliveries share messages, each answered only once sent."""

from __future__ import annotations

import random
import string
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import pytest

from common.envelope import MAX_MESSAGE_BYTES, compress, decode_message, to_json_bytes
from common.memory_queue import InMemoryQueue
from common.packing import PackedMessage
from common.queue import QueueUnavailable
from frontend.app import create_app
from frontend.batching import PACK_OVERHEAD_BYTES, GroupCommitter, Receipt
from tests.frontend.deliveries import frontend_settings, github_headers, json_body
from tools.payloads import JOB_ID, envelope_for, workflow_job_payload

WAIT_S = 10.0
# Sends gated by a test must keep holding the next message back for the whole test.
NEVER_STALLS_S = 60.0


class GatedQueue(InMemoryQueue):
    """The in-memory queue whose sends wait for `gate`; records sends and answers in order."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Semaphore(0)
        self.fail_calls: set[int] = set()  # which sends (1-based) answer 503
        self.calls = 0
        self.events: list[tuple[str, str]] = []  # ("sent", message id) / ("answered", delivery)
        self.texts: list[str] = []
        self._record = threading.Lock()

    def send(self, content: str) -> str:
        self.entered.release()
        assert self.gate.wait(WAIT_S)
        self.calls += 1
        if self.calls in self.fail_calls:
            raise QueueUnavailable("queue answered 503")
        message_id = super().send(content)
        with self._record:
            self.texts.append(content)
            self.events.append(("sent", message_id))
        return message_id

    def answered(self, delivery_id: str) -> None:
        with self._record:
            self.events.append(("answered", delivery_id))

    def wait_entered(self) -> None:
        assert self.entered.acquire(timeout=WAIT_S), "no send started"

    def delivery_ids(self) -> list[list[str]]:
        return [[e.delivery_id for e in decode_message(text)] for text in self.texts]


def delivery(delivery_id: str, blob_chars: int = 0) -> PackedMessage:
    """A packed delivery; `blob_chars` of random text make its message about that large."""
    payload = workflow_job_payload("completed")
    if blob_chars:
        rng = random.Random(delivery_id)
        payload["blob"] = "".join(rng.choices(string.ascii_letters, k=blob_chars))
    document = to_json_bytes(envelope_for(payload, delivery_id=delivery_id))
    text = compress(document)
    return PackedMessage(text, len(text), False, document)


def wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


@pytest.fixture
def queue() -> GatedQueue:
    return GatedQueue()


MakeCommitter = Callable[..., GroupCommitter]


@pytest.fixture
def make_committer(queue: GatedQueue) -> Iterator[MakeCommitter]:
    """Committers over the gated queue, closed (their threads ended) after the test."""
    made: list[GroupCommitter] = []

    def make(**options: Any) -> GroupCommitter:
        made.append(GroupCommitter(queue, stall_s=NEVER_STALLS_S, **options))
        return made[-1]

    yield make
    queue.gate.set()
    for committer in made:
        committer.close()
    assert [committer.threads for committer in made] == [0] * len(made)


@pytest.fixture
def committer(make_committer: MakeCommitter) -> GroupCommitter:
    return make_committer()


def test_a_lone_delivery_is_sent_at_once_as_a_single_envelope(
    queue: GatedQueue, committer: GroupCommitter
) -> None:
    queue.gate.set()

    receipt = committer.send(delivery("d-0"))

    assert receipt == Receipt("m1", 1)
    assert queue.texts == [delivery("d-0").text]


def test_deliveries_arriving_during_a_send_share_the_next_message_answered_after_it(
    queue: GatedQueue, committer: GroupCommitter
) -> None:
    results: dict[str, Receipt] = {}

    def request(delivery_id: str) -> None:
        results[delivery_id] = committer.send(delivery(delivery_id))
        queue.answered(delivery_id)

    first = threading.Thread(target=request, args=("d-0",))
    first.start()
    queue.wait_entered()  # d-0's send is in flight and held
    others = [threading.Thread(target=request, args=(f"d-{i}",)) for i in range(1, 9)]
    for thread in others:
        thread.start()
    wait_until(lambda: committer.waiting == 8, "8 deliveries waiting")

    assert queue.events == []  # nobody answered while their message is unsent
    queue.gate.set()
    for thread in [first, *others]:
        thread.join(WAIT_S)

    assert [sorted(ids) for ids in queue.delivery_ids()] == [
        ["d-0"],
        [f"d-{i}" for i in range(1, 9)],
    ]
    assert results == {"d-0": Receipt("m1", 1)} | {f"d-{i}": Receipt("m2", 8) for i in range(1, 9)}
    sent_at = {message_id: n for n, (kind, message_id) in enumerate(queue.events) if kind == "sent"}
    for n, (kind, delivery_id) in enumerate(queue.events):
        if kind == "answered":
            assert n > sent_at[results[delivery_id].message_id]


def test_a_failed_send_fails_every_delivery_of_that_message_only(
    queue: GatedQueue, committer: GroupCommitter
) -> None:
    queue.fail_calls = {2}
    futures = [committer.submit(delivery("d-0"))]
    queue.wait_entered()
    futures += [committer.submit(delivery(f"d-{i}")) for i in (1, 2, 3)]

    queue.gate.set()

    assert futures[0].result(WAIT_S) == Receipt("m1", 1)
    for future in futures[1:]:
        with pytest.raises(QueueUnavailable, match="queue answered 503"):
            future.result(WAIT_S)
    assert committer.send(delivery("d-4")) == Receipt("m2", 1)
    assert queue.delivery_ids() == [["d-0"], ["d-4"]]


def test_messages_stay_under_the_cap_and_a_delivery_too_big_to_share_goes_alone(
    queue: GatedQueue, committer: GroupCommitter
) -> None:
    medium = [delivery(f"d-medium-{i}", blob_chars=22_000) for i in range(3)]
    big = delivery("d-big", blob_chars=62_800)
    small = delivery("d-1")
    size = medium[0].size_bytes
    assert 2 * size + PACK_OVERHEAD_BYTES <= MAX_MESSAGE_BYTES < 3 * size
    assert big.size_bytes + small.size_bytes > MAX_MESSAGE_BYTES >= big.size_bytes

    futures = [committer.submit(delivery("d-0"))]
    queue.wait_entered()
    futures += [committer.submit(message) for message in [*medium, big, small]]
    queue.gate.set()

    assert [future.result(WAIT_S).deliveries for future in futures] == [1, 2, 2, 1, 1, 1]
    assert queue.delivery_ids() == [
        ["d-0"],
        ["d-medium-0", "d-medium-1"],
        ["d-medium-2"],
        ["d-big"],
        ["d-1"],
    ]
    assert max(len(text) for text in queue.texts) <= MAX_MESSAGE_BYTES


def test_at_most_max_per_message_deliveries_share_one(
    queue: GatedQueue, make_committer: MakeCommitter
) -> None:
    committer = make_committer(max_per_message=3)
    futures = [committer.submit(delivery("d-0"))]
    queue.wait_entered()
    futures += [committer.submit(delivery(f"d-{i}")) for i in range(1, 8)]
    queue.gate.set()

    assert [future.result(WAIT_S).deliveries for future in futures] == [1, 3, 3, 3, 3, 3, 3, 1]


def test_a_pack_larger_than_its_members_promised_is_split(
    queue: GatedQueue, make_committer: MakeCommitter
) -> None:
    committer = make_committer(max_message_bytes=6000)
    understated = [
        PackedMessage(m.text, 100, False, m.document)
        for m in (delivery(f"d-{i}", blob_chars=1200) for i in range(1, 5))
    ]
    futures = [committer.submit(delivery("d-0"))]
    queue.wait_entered()
    futures += [committer.submit(message) for message in understated]
    queue.gate.set()

    assert [future.result(WAIT_S).deliveries for future in futures] == [1, 2, 2, 2, 2]
    assert queue.delivery_ids() == [["d-0"], ["d-1", "d-2"], ["d-3", "d-4"]]


def test_a_request_past_its_deadline_is_withdrawn_and_never_sent(
    queue: GatedQueue, make_committer: MakeCommitter
) -> None:
    committer = make_committer(deadline_s=0.01)
    first: Future[Receipt] = committer.submit(delivery("d-0"))
    queue.wait_entered()

    with pytest.raises(QueueUnavailable, match=r"within 0.01 s \(withdrawn\)"):
        committer.send(delivery("d-late"))
    queue.gate.set()

    assert first.result(WAIT_S) == Receipt("m1", 1)
    committer.close()
    assert queue.delivery_ids() == [["d-0"]]


def test_close_sends_everything_waiting_then_refuses(
    queue: GatedQueue, committer: GroupCommitter
) -> None:
    futures = [committer.submit(delivery("d-0"))]
    queue.wait_entered()
    futures += [committer.submit(delivery(f"d-{i}")) for i in (1, 2)]
    closer = threading.Thread(target=committer.close)
    closer.start()

    queue.gate.set()
    closer.join(WAIT_S)

    assert not closer.is_alive()
    assert [future.result(0).deliveries for future in futures] == [1, 2, 2]
    with pytest.raises(QueueUnavailable, match="stopping"):
        committer.submit(delivery("d-3"))


def test_too_many_waiting_deliveries_are_refused(
    queue: GatedQueue, make_committer: MakeCommitter
) -> None:
    committer = make_committer(max_waiting=2)
    committer.submit(delivery("d-0"))
    queue.wait_entered()
    committer.submit(delivery("d-1"))
    committer.submit(delivery("d-2"))

    with pytest.raises(QueueUnavailable, match="2 deliveries already wait for the queue"):
        committer.submit(delivery("d-3"))
    queue.gate.set()
    committer.close()
    assert queue.delivery_ids() == [["d-0"], ["d-1", "d-2"]]


def test_packing_off_sends_each_delivery_alone_without_waiting_for_other_sends(
    queue: GatedQueue, make_committer: MakeCommitter
) -> None:
    committer = make_committer(max_per_message=1)

    # Given three deliveries submitted while no send may finish
    futures = [committer.submit(delivery(f"d-{i}")) for i in range(3)]

    # Then all three sends are in flight at once, and each message carries one delivery
    for _ in range(3):
        queue.wait_entered()
    queue.gate.set()
    assert sorted(future.result(WAIT_S).message_id for future in futures) == ["m1", "m2", "m3"]
    assert {future.result(0).deliveries for future in futures} == {1}
    assert sorted(queue.delivery_ids()) == [["d-0"], ["d-1"], ["d-2"]]
    committer.close()


@pytest.mark.parametrize(("packing", "max_per_message"), [(True, 32), (False, 1)])
def test_the_app_sends_through_one_committer_packing_or_not(
    packing: bool, max_per_message: int
) -> None:
    memory = InMemoryQueue()
    app = create_app(replace(frontend_settings(), packing=packing), queue=memory)
    client = app.test_client()

    statuses = []
    for index in range(2):
        body = json_body(workflow_job_payload("completed", id=JOB_ID + index))
        statuses.append(
            client.post(
                "/webhook", data=body, headers=github_headers(body, "workflow_job")
            ).status_code
        )
    sender = app.extensions["github_telemetry"].sender
    sender.close()

    assert (statuses, memory.sent_count) == ([202, 202], 2)
    assert sender.max_per_message == max_per_message
