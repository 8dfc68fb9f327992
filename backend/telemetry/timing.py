"""Parse GitHub's timestamps and turn pairs of them into clamped, capped intervals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The longest any single interval can legitimately be: GitHub's workflow run time limit
# (35 days) bounds a run attempt, a job on a self-hosted runner and the queue time of a job
# waiting for an environment approval (30 days at most).
# https://docs.github.com/en/actions/reference/limits
MAX_INTERVAL_S = 35 * 24 * 3600.0
# A run's total duration spans re-runs, allowed up to 30 days after the first attempt.
# https://docs.github.com/en/actions/managing-workflow-runs/re-running-workflows-and-jobs
MAX_RUN_TOTAL_S = MAX_INTERVAL_S + 30 * 24 * 3600.0
# Earlier timestamps are placeholders, such as the "0001-01-01T00:00:00Z" of a skipped step.
EARLIEST_PLAUSIBLE = datetime(2008, 1, 1, tzinfo=UTC)

NEGATIVE = "negative"
MISSING = "missing"
OVER_CAP = "over_cap"


def as_utc(moment: datetime) -> datetime:
    """Return `moment` as an aware UTC datetime (naive ones are taken to be UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO-8601 string (`Z`, offsets, fractions) or epoch seconds to aware UTC.

    Returns None for null, unparseable and placeholder values.
    """
    moment: datetime
    if isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    try:
        # An offset at the ends of the calendar ("0001-01-01T00:00:00+01:00") has no UTC time.
        moment = as_utc(moment)
    except (OverflowError, ValueError):
        return None
    return moment if moment >= EARLIEST_PLAUSIBLE else None


def timestamp(obj: Mapping[str, Any], key: str) -> datetime | None:
    """Return the parsed timestamp field `key` of `obj`, or None."""
    return parse_timestamp(obj.get(key))


def first(*moments: datetime | None) -> datetime | None:
    """Return the first of `moments` that is known."""
    return next((moment for moment in moments if moment is not None), None)


@dataclass
class Timings:
    """Measurements built from intervals, with the anomalies met on the way."""

    measurements: dict[str, float] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)

    def interval(
        self,
        name: str,
        start: datetime | None,
        end: datetime | None,
        cap_s: float = MAX_INTERVAL_S,
    ) -> None:
        """Record `end - start` in seconds as measurement `name`.

        A missing end point or a span over `cap_s` leaves the measurement out; a negative span
        (GitHub's one-second timestamps disagreeing) counts as 0. Each notes an anomaly.
        """
        if start is None or end is None:
            self.anomalies.append(f"{name}:{MISSING}")
            return
        seconds = (end - start).total_seconds()
        if seconds < 0:
            self.anomalies.append(f"{name}:{NEGATIVE}")
            seconds = 0.0
        elif seconds > cap_s:
            self.anomalies.append(f"{name}:{OVER_CAP}")
            return
        self.measurements[name] = seconds

    def properties(self) -> dict[str, str]:
        """Return `{"timing_anomaly": ...}` when anything was clamped or missing, else {}."""
        return {"timing_anomaly": ",".join(self.anomalies)} if self.anomalies else {}
