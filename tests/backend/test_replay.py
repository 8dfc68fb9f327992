"""The poison replay over in-memory queues: what it moves, what it leaves, and how it is run."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.idempotency import ClaimStatus, InMemoryLedger, LedgerUnavailable
from backend.replay import Options, duration_s, main, replay
from common.memory_queue import InMemoryQueue
from common.queue import QueueMessage, poison_record

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
KEY = "workflow_job:1:completed"


def record(
    content: str,
    reason: str = "the sink rejected 1 of 1 items (first: WorkflowRun: ingestion refused)",
    age: timedelta = timedelta(hours=3),
    member: tuple[int, int, str] | None = None,
    message_id: str = "m-1",
    completed_key: str | None = None,
) -> str:
    message = QueueMessage(message_id, "r", content, 6, NOW - timedelta(days=1))
    return poison_record(message, reason, "q", NOW - age, member, completed_key=completed_key)


def fill(*records: str) -> tuple[InMemoryQueue, InMemoryQueue]:
    poison, target = InMemoryQueue("q-poison"), InMemoryQueue("q")
    for text in records:
        poison.send(text)
    return poison, target


def contents(queue: InMemoryQueue) -> list[str]:
    return [message.content for message in queue.receive(32, 60)]


class JournaledLedger(InMemoryLedger):
    """The in-memory ledger, writing each reopen into a journal shared with the queue."""

    def __init__(self, journal: list[str]) -> None:
        super().__init__()
        self.journal = journal

    def reopen(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self.journal.append(f"reopen {keys}")
        super().reopen(keys)


class JournaledQueue(InMemoryQueue):
    """The in-memory queue, writing each send into a journal shared with the ledger."""

    def __init__(self, name: str, journal: list[str]) -> None:
        super().__init__(name)
        self.journal = journal

    def send(self, content: str) -> str:
        self.journal.append(f"send {content}")
        return super().send(content)


def member_replay(dry_run: bool) -> tuple[list[str], list[str], JournaledLedger, InMemoryQueue]:
    """Replay a member record whose key was completed, and a plain record, over journals."""
    journal: list[str] = []
    ledger = JournaledLedger(journal)
    ledger.complete([KEY], "worker", NOW)
    poison = InMemoryQueue("q-poison")
    poison.send(record("pack", member=(0, 2, "member"), message_id="m-1", completed_key=KEY))
    poison.send(record("plain", message_id="m-2"))
    target = JournaledQueue("q", journal)
    printed: list[str] = []
    replay(poison, target, Options(dry_run=dry_run), NOW, printed.append, ledger)
    return journal, printed, ledger, poison


def test_every_record_goes_back_with_its_original_content_and_is_printed() -> None:
    big = "".join(random.Random(7).choices(string.ascii_letters, k=10_000)) * 8  # gzip+base64
    poison, target = fill(
        record("plain text"),
        record(big, message_id="m-2"),
        record("whole pack", member=(1, 3, "one envelope"), message_id="m-3"),
    )
    assert json.loads(poison.receive(32, 0)[1].content)["content_encoding"] == "gzip+base64"
    printed: list[str] = []

    summary = replay(poison, target, Options(), NOW, printed.append)

    assert summary.moved == 3
    assert sorted(contents(target)) == sorted(["plain text", big, "one envelope"])
    assert len(poison) == 0
    assert printed[0].startswith("moved m-1 (poisoned 2024-03-10T09:00:00+00:00): the sink")
    assert printed[2].startswith("moved m-3 member 1/3 ")
    assert printed[-1] == "moved 3 record(s); 0 left that cannot be replayed"


def test_a_truncated_or_unreadable_record_is_reported_and_left() -> None:
    truncated = json.loads(record("x"))
    truncated["content_encoding"] = "text-truncated"
    poison, target = fill(json.dumps(truncated), "not a record", record("fine", message_id="m-2"))
    printed: list[str] = []

    summary = replay(poison, target, Options(), NOW, printed.append)

    assert (summary.moved, len(summary.left)) == (1, 2)
    assert contents(target) == ["fine"]
    assert len(poison) == 2 and len(poison.receive(32, 60)) == 2  # visible again
    assert "truncated to fit the poison queue" in printed[0]


def test_filters_and_the_limit_choose_what_moves() -> None:
    poison, target = fill(
        record("new", age=timedelta(minutes=30)),
        record("other", reason="EnvelopeError: not base64", message_id="m-2"),
        record("a", message_id="m-3"),
        record("b", message_id="m-4"),
    )
    options = Options(older_than_s=duration_s("2h"), reason_contains="SINK REJECTED", limit=1)

    assert replay(poison, target, options, NOW, lambda _line: None).moved == 1
    assert contents(target) == ["a"]
    assert len(poison.receive(32, 60)) == 3


def test_a_dry_run_moves_nothing_and_leaves_every_record_visible() -> None:
    poison, target = fill(record("a"), record("b", message_id="m-2"))
    printed: list[str] = []

    summary = replay(poison, target, Options(dry_run=True), NOW, printed.append)

    assert summary.moved == 2
    assert len(target) == 0
    assert len(poison.receive(32, 60)) == 2
    assert printed[-1] == "would move 2 record(s); 0 left that cannot be replayed"


def test_a_completed_member_key_is_reopened_before_its_copy_is_sent() -> None:
    journal, printed, ledger, poison = member_replay(dry_run=False)

    assert journal == [f"reopen {[KEY]}", "send member", "send plain"]
    assert ledger.claim([KEY], "worker", NOW) == {KEY: ClaimStatus.CLAIMED}
    assert printed[0].endswith(f"; reopened ledger key {KEY}")
    assert len(poison) == 0


def test_a_dry_run_reopens_nothing() -> None:
    journal, printed, ledger, poison = member_replay(dry_run=True)

    assert journal == []
    assert ledger.claim([KEY], "worker", NOW) == {KEY: ClaimStatus.DONE}
    assert printed[0].endswith(f"; would reopen ledger key {KEY}")
    assert len(poison) == 2


def test_a_ledger_outage_stops_the_replay_before_the_copy() -> None:
    poison, target = fill(record("pack", member=(0, 2, "member"), completed_key=KEY))
    ledger = InMemoryLedger()
    ledger.unavailable = True

    with pytest.raises(LedgerUnavailable):
        replay(poison, target, Options(), NOW, lambda _line: None, ledger)

    assert (len(target), len(poison)) == (0, 1)


def test_a_record_naming_a_malformed_key_is_left() -> None:
    poison, target = fill(record("pack", member=(0, 2, "member"), completed_key="no/key"))
    printed: list[str] = []

    summary = replay(poison, target, Options(), NOW, printed.append, InMemoryLedger())

    assert (summary.moved, len(target), len(poison)) == (0, 0, 1)
    assert printed[0] == "left m-1 member 0/2: its completed_key is not a ledger key"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0)])
def test_durations_read_with_their_unit(text: str, seconds: float) -> None:
    assert duration_s(text) == seconds


def test_a_bad_setting_stops_it_like_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "BACKEND_AZURE_STORAGE_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("AZURE_STORAGE_ACCOUNT_NAME=acct\nAZURE_STORAGE_QUEUE_NAME=A\n")

    assert main(["--dry-run"]) == 78
    assert "AZURE_STORAGE_QUEUE_NAME" in capsys.readouterr().err
