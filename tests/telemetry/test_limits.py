"""Size limits and the ingestion time window, applied to items before they are sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from backend.telemetry.item import TelemetryItem
from backend.telemetry.limits import (
    MARKER,
    MAX_NAME_CHARS,
    MAX_VALUE_CHARS,
    TRUNCATED_FIELDS,
    short_name,
    within_limits,
)
from backend.telemetry.window import place

T0 = datetime(2024, 3, 5, 10, 2, 40, tzinfo=UTC)


def item(**properties: str) -> TelemetryItem:
    return TelemetryItem(
        name="WorkflowJob",
        timestamp=T0,
        properties=dict(properties),
        measurements={"duration_seconds": 1.0},
        item_id="61574112bbc7dde7",
    )


def size_of(subject: TelemetryItem) -> int:
    document = {"properties": subject.properties, "measurements": subject.measurements}
    return len(json.dumps(document, ensure_ascii=False).encode("utf-8"))


def test_names_are_cut_to_150_characters_and_two_long_names_stay_two() -> None:
    first, second = "p" * 200 + "1", "p" * 200 + "2"
    subject = TelemetryItem(
        name="WorkflowJob",
        timestamp=T0,
        properties={first: "a", second: "b"},
        measurements={"m" * 20_000: 2.0},
    )

    result = within_limits(subject)

    assert [len(name) for name in result.properties] == [MAX_NAME_CHARS, MAX_NAME_CHARS]
    assert result.properties == {short_name(first): "a", short_name(second): "b"}
    assert short_name(first) != short_name(second)
    assert result.measurements == {short_name("m" * 20_000): 2.0}
    assert TRUNCATED_FIELDS not in result.properties


def test_values_over_8192_characters_are_cut_with_a_marker_and_named_in_a_flag() -> None:
    result = within_limits(item(job_name="j" * 20_000, workflow_name="w" * 8192, result="ok"))

    assert result.properties["job_name"] == "j" * (MAX_VALUE_CHARS - len(MARKER)) + MARKER
    assert result.properties["workflow_name"] == "w" * 8192
    assert result.properties[TRUNCATED_FIELDS] == "job_name"
    assert result.item_id == "61574112bbc7dde7"


def test_an_item_within_every_limit_is_returned_as_it_is() -> None:
    subject = item(job_name="build", labels="ubuntu-latest")

    assert within_limits(subject, size_of) is subject


def test_an_item_over_64_kb_loses_characters_of_its_longest_values_first() -> None:
    many = {f"k{n}": "é" * 4000 for n in range(8)}
    subject = item(a="a" * 8000, b="b" * 8000, c="c" * 100, **many)
    assert size_of(subject) > 64 * 1024

    result = within_limits(subject, size_of)

    assert size_of(result) <= 64 * 1024
    assert result.properties["c"] == "c" * 100
    assert result.properties["a"].endswith(MARKER) and result.properties["b"].endswith(MARKER)
    assert all(result.properties[f"k{n}"] == "é" * 4000 for n in range(8))
    assert result.properties[TRUNCATED_FIELDS] == "a,b"


def test_an_item_is_shrunk_to_any_size_its_values_allow() -> None:
    subject = item(a="a" * 5000, b="b" * 3000)

    result = within_limits(subject, size_of, max_bytes=2000)

    assert size_of(result) <= 2000
    assert result.properties[TRUNCATED_FIELDS] == "a,b"


NOW = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "moved"),
    [
        (timedelta(hours=1), False),
        (timedelta(hours=46, minutes=59), False),
        (timedelta(hours=47, seconds=1), True),
        (timedelta(days=3), True),
        (timedelta(hours=-23), False),
        (timedelta(hours=-25), True),
    ],
)
def test_an_item_outside_the_window_is_placed_at_export_time_with_its_true_time_kept(
    age: timedelta, moved: bool
) -> None:
    true_time = NOW - age
    subject = TelemetryItem(name="WorkflowRun", timestamp=true_time, item_id="ab", parent_id="cd")

    result = place(subject, NOW)

    assert result.properties["event_time"] == true_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert (result.item_id, result.parent_id) == ("ab", "cd")
    if moved:
        assert result.timestamp == NOW
        assert result.properties["is_late"] == "true"
        assert result.measurements == {"late_seconds": age.total_seconds()}
    else:
        assert result.timestamp == true_time
        assert "is_late" not in result.properties and result.measurements == {}
