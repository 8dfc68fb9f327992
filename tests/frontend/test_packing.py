"""Fitting deliveries into one 64 KiB queue message: reduce, compress, shorten free text."""

from __future__ import annotations

import pytest
from pytest_mock import MockerFixture

from common import packing
from common.envelope import MAX_MESSAGE_BYTES, Envelope, decode
from common.packing import MessageTooLarge, clip, pack, shorten_free_text
from common.reduction import reduce_payload
from tests.frontend.oversized import job_with_steps, noise, run_with_huge_commit_message
from tools.payloads import (
    DELIVERY_ID,
    RECEIVED_AT,
    envelope_for,
    workflow_job_payload,
    workflow_run_payload,
)


def test_a_delivery_packs_into_its_reduced_envelope() -> None:
    payload = workflow_run_payload("completed")

    packed = pack(envelope_for(payload))

    assert decode(packed.text) == Envelope(
        delivery_id=DELIVERY_ID,
        event="workflow_run",
        action="completed",
        received_at=RECEIVED_AT,
        payload=reduce_payload("workflow_run", payload),
        hook_id="470102145",
        installation_target_type="organization",
        installation_target_id="79927191",
        truncated=False,
    )
    assert (packed.size_bytes, packed.truncated) == (len(packed.text), False)


def test_a_run_with_a_1_mb_commit_message_fits_untruncated() -> None:
    payload = run_with_huge_commit_message()

    packed = pack(envelope_for(payload))

    assert packed.truncated is False
    assert packed.size_bytes <= MAX_MESSAGE_BYTES
    assert decode(packed.text).payload["workflow_run"]["head_commit"] == {
        "id": payload["workflow_run"]["head_commit"]["id"],
        "timestamp": "2024-03-05T09:59:41Z",
    }


def test_a_job_with_1000_steps_fits_untruncated() -> None:
    payload = job_with_steps(1000)

    packed = pack(envelope_for(payload))

    envelope = decode(packed.text)
    assert packed.truncated is False
    assert packed.size_bytes <= MAX_MESSAGE_BYTES
    assert envelope.payload == reduce_payload("workflow_job", payload)
    assert len(envelope.payload["workflow_job"]["steps"]) == 1000


@pytest.mark.parametrize(
    ("count", "name_chars", "limit"),
    [(100, 2000, 200), (400, 300, 64), (1000, 300, 16)],
)
def test_long_distinct_step_names_are_shortened_until_they_fit(
    count: int, name_chars: int, limit: int
) -> None:
    payload = job_with_steps(count, name_chars)

    packed = pack(envelope_for(payload))

    steps = decode(packed.text).payload["workflow_job"]["steps"]
    original = payload["workflow_job"]["steps"]
    assert packed.truncated is True
    assert packed.size_bytes <= MAX_MESSAGE_BYTES
    assert [s["name"] for s in steps] == [clip(s["name"], limit) for s in original]
    assert {len(s["name"]) for s in steps} == {limit}
    assert [s["number"] for s in steps] == list(range(1, count + 1))


def test_a_payload_is_reduced_once_however_many_limits_it_takes(mocker: MockerFixture) -> None:
    # Reduction walks the whole payload; each shortening pass works on its result instead.
    reduce = mocker.spy(packing, "reduce_payload")
    payload = job_with_steps(1000, 300)

    packed = pack(envelope_for(payload))

    assert packed.truncated is True
    reduce.assert_called_once_with("workflow_job", payload)


def test_a_1_mb_display_title_is_cut_to_200_characters() -> None:
    title = noise("title", 1_000_000)
    payload = workflow_run_payload("completed", display_title=title)

    packed = pack(envelope_for(payload))

    run = decode(packed.text).payload["workflow_run"]
    assert packed.truncated is True
    assert run["display_title"] == title[:199] + "…"
    assert run["name"] == "Build"


def test_text_the_truncation_does_not_touch_makes_the_delivery_too_large() -> None:
    payload = workflow_run_payload("completed", head_sha=noise("sha", 200_000))

    with pytest.raises(MessageTooLarge) as raised:
        pack(envelope_for(payload))

    message = str(raised.value)
    assert message.startswith(f"workflow_run delivery {DELIVERY_ID} takes ")
    assert message.endswith(
        " bytes with free text cut to 16 characters; "
        "an envelope may take 63488 (the queue's 64 KiB less a poison record)"
    )


def test_shorten_free_text_cuts_only_the_listed_fields() -> None:
    payload = reduce_payload(
        "workflow_job",
        workflow_job_payload("completed", name="n" * 30, labels=["l" * 30, "short"]),
    )

    shortened = shorten_free_text("workflow_job", payload, 10)

    job = shortened["workflow_job"]
    assert (job["name"], job["labels"]) == ("nnnnnnnnn…", ["lllllllll…", "short"])
    assert [s["name"] for s in job["steps"]] == [
        "Set up job",
        "Run actio…",
        "Run tests",
        "Complete …",
    ]
    assert job["head_sha"] == payload["workflow_job"]["head_sha"]
    assert payload["workflow_job"]["name"] == "n" * 30


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("abc", 3, "abc"), ("abcd", 3, "ab…"), ("", 3, ""), ("ééééé", 4, "ééé…")],
)
def test_clip(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected
