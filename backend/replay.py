"""`python -m backend.replay`: move poison records back to the queue with their original content.

Configured exactly like the backend (the environment, then `.env`, the same names). Each
matching record of `<queue>-poison` is copied to the queue, then deleted: an interruption
leaves at worst a copy in both, which the ledger counts once. The record of a pack member
whose ledger key was completed on poisoning names that key, and the key is reopened in the
backend's ledger before the copy is sent, or the copy would be skipped as already exported
(such a copy left in both queues, then exported, is exported again by the next replay).
A record whose content was cut to fit the poison queue cannot be replayed; it is reported and
left where it is.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import gzip
import hashlib
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from backend.idempotency.ledger import Ledger, check_key
from backend.idempotency.memory import NullLedger
from common.queue import MessageGone, QueueConsumer, QueueError, QueueMessage, QueueProducer

EXIT_CONFIG = 78
# How long a record taken for inspection stays hidden from other readers of the poison queue.
VISIBILITY_TIMEOUT_S = 300
BATCH = 32
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class Options:
    """Which records to move, and whether only to say so."""

    dry_run: bool = False
    older_than_s: float | None = None
    reason_contains: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class Record:
    """One poison record: why it was poisoned, when, and its original content (if it has it)."""

    label: str
    reason: str
    dead_lettered_at: datetime | None
    content: str | None
    problem: str = ""
    completed_key: str | None = None  # the ledger key to reopen before the copy is sent


@dataclass
class Summary:
    """What one replay did."""

    moved: int = 0
    left: list[str] = field(default_factory=list)


def duration_s(text: str) -> float:
    """Parse `90s`, `30m`, `2h`, `3d` (or plain seconds) into seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration like 90s, 30m, 2h or 3d: {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _decoded(document: dict[str, object]) -> tuple[str | None, str]:
    """The record's original content, or None and why it cannot be had."""
    encoding = document.get("content_encoding", "text")
    content = document.get("content")
    if not isinstance(content, str):
        return None, "the record holds no content"
    if encoding == "text":
        text = content
    elif encoding == "gzip+base64":
        try:
            text = gzip.decompress(base64.b64decode(content, validate=True)).decode(
                "utf-8", "surrogatepass"
            )
        except (binascii.Error, OSError, EOFError, UnicodeDecodeError):
            return None, "its gzip+base64 content cannot be decoded"
    elif encoding == "text-truncated":
        return None, "its content was truncated to fit the poison queue: it cannot be replayed"
    else:
        return None, f"unknown content_encoding {encoding!r}"
    expected = document.get("content_sha256")
    actual = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if isinstance(expected, str) and expected != actual:
        return None, "its content does not match its content_sha256"
    return text, ""


def read_record(message: QueueMessage) -> Record:
    """Read one poison queue message as a Record (a problem says why it cannot be replayed)."""
    try:
        document = json.loads(message.content)
    except json.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        return Record(message.id, "", None, None, "not a poison record (not a JSON object)")
    label = str(document.get("message_id") or message.id)
    if isinstance(document.get("member_index"), int):
        label += f" member {document['member_index']}/{document.get('member_count')}"
    moment = None
    try:
        moment = datetime.fromisoformat(str(document.get("dead_lettered_at")))
    except ValueError:
        pass
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    content, problem = _decoded(document)
    key = document.get("completed_key")
    if key is not None and not problem:
        try:
            check_key(str(key))
        except ValueError:
            problem = "its completed_key is not a ledger key"
    completed_key = None if key is None else str(key)
    return Record(label, str(document.get("reason", "")), moment, content, problem, completed_key)


def matches(record: Record, options: Options, now: datetime) -> bool:
    """Tell whether the filters select `record` (the reason is matched case-insensitively)."""
    if options.reason_contains and options.reason_contains.lower() not in record.reason.lower():
        return False
    if options.older_than_s is not None:
        cutoff = now - timedelta(seconds=options.older_than_s)
        if record.dead_lettered_at is None or record.dead_lettered_at > cutoff:
            return False
    return True


def replay(
    poison: QueueConsumer,
    target: QueueProducer,
    options: Options,
    now: datetime,
    out: Callable[[str], None] = print,
    ledger: Ledger | None = None,
) -> Summary:
    """Move the matching records of `poison` to `target`: reopen, copy, then delete; print each.

    A record naming a `completed_key` has it reopened in `ledger` first (none: the ledger is
    disabled). Records not moved are hidden while the replay reads on (so each is read once)
    and made visible again at the end.

    Raises:
        QueueError: a queue failed; what was moved stays moved, the rest stays in poison.
        LedgerUnavailable: the ledger failed; the record being moved stays in poison.
    """
    ledger = ledger if ledger is not None else NullLedger()
    summary = Summary()
    verb = "would move" if options.dry_run else "moved"
    reopened = "would reopen" if options.dry_run else "reopened"
    seen: set[str] = set()
    kept: list[QueueMessage] = []
    try:
        while options.limit is None or summary.moved < options.limit:
            batch = poison.receive(BATCH, VISIBILITY_TIMEOUT_S)
            if not batch or all(message.id in seen for message in batch):
                kept += batch
                break
            for message in batch:
                if message.id in seen:
                    kept.append(message)
                    continue
                seen.add(message.id)
                record = read_record(message)
                full = options.limit is not None and summary.moved >= options.limit
                if full or not matches(record, options, now):
                    kept.append(message)
                    continue
                if record.problem:
                    summary.left.append(record.label)
                    out(f"left {record.label}: {record.problem}")
                    kept.append(message)
                    continue
                if not options.dry_run:
                    assert record.content is not None
                    if record.completed_key is not None:
                        # Before the copy: a worker taking it first would find the key done.
                        ledger.reopen([record.completed_key])
                    target.send(record.content)
                    _delete(poison, message, out)
                else:
                    kept.append(message)
                summary.moved += 1
                when = record.dead_lettered_at.isoformat() if record.dead_lettered_at else "?"
                line = f"{verb} {record.label} (poisoned {when}): {record.reason}"
                if record.completed_key is not None:
                    line += f"; {reopened} ledger key {record.completed_key}"
                out(line)
    finally:
        for message in kept:
            try:
                poison.release(message)
            except QueueError:
                pass  # it reappears when its visibility timeout ends
    out(f"{verb} {summary.moved} record(s); {len(summary.left)} left that cannot be replayed")
    return summary


def _delete(poison: QueueConsumer, message: QueueMessage, out: Callable[[str], None]) -> None:
    try:
        poison.delete(message)
    except MessageGone:
        # Copied but not deleted: both copies exist, and the ledger counts the event once.
        out(f"note: {message.id} was copied but another reader holds it in poison now")


def parse_options(argv: Sequence[str] | None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m backend.replay",
        description="Move poison records back to the queue with their original content.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would move, move none")
    parser.add_argument("--older-than", type=duration_s, help="poisoned longer ago (2h, 3d)")
    parser.add_argument("--reason-contains", help="only records whose reason contains this")
    parser.add_argument("--limit", type=int, help="move at most this many")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return Options(args.dry_run, args.older_than, args.reason_contains, args.limit)


def main(argv: Sequence[str] | None = None) -> int:
    """Replay from `<queue>-poison` to the queue the backend's settings name."""
    from backend.idempotency import LedgerUnavailable, create_ledger
    from backend.process import close_ledger
    from backend.settings import load_backend_settings
    from common.settings import SettingsError, environment

    options = parse_options(argv)
    try:
        settings = load_backend_settings(environment())
    except SettingsError as error:
        print(f"replay cannot start: {error}", file=sys.stderr)
        return EXIT_CONFIG
    from common.azure_queue import AzureQueue

    storage = settings.storage
    target = AzureQueue(storage)
    poison = AzureQueue(replace(storage, queue_name=storage.poison_queue_name))
    ledger = create_ledger(storage, settings.ledger)
    print(f"replaying {storage.poison_queue_name} to {storage.queue_name}")
    try:
        replay(poison, target, options, datetime.now(UTC), ledger=ledger)
    except (QueueError, LedgerUnavailable) as error:
        print(f"replay stopped, the rest stays in poison: {error}", file=sys.stderr)
        return 1
    finally:
        target.close()
        poison.close()
        close_ledger(ledger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
