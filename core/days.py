"""Days: the calendar of the daily partitions of the on-prem transactions and everything computed from them
(the Dagster partition definitions built on it are in hybrid_assets/partitions.py).

A partition is an *arrival* day: the ``transactions`` partition 2026-05-03 holds the rows whose ``ingested_at``
falls on that day (UTC), and the feature partition 2026-05-03 is every customer's features as of the start of
that day (midnight), from the rows that had arrived before it, i.e. in the transactions partitions up to
2026-05-02. So a feature partition only depends on earlier days, a late-arriving row lands in the day it
arrived (not in an already-published day), and rerunning a past partition gives the same bytes. Today's
feature partition is final from the start of the day; today's transactions partition is rerun as rows arrive. Decisions and trade-offs: docs/decisions.md ("Partitions").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta

# The first daily partition when the source mapping does not say (its `first_day`, core/sources.py). Static by
# necessity: Dagster compares partition sets across runs, so it is declared, not read from the data at load
# time (`hybrid sources check` says when rows arrive before it). Move it back, never forward.
DEFAULT_FIRST_DAY = date(2026, 1, 1)

RANGE_START_TAG, RANGE_END_TAG, PARTITION_TAG = (
    "dagster/asset_partition_range_start",
    "dagster/asset_partition_range_end",
    "dagster/partition",
)


def day_key(day: date) -> str:
    return day.isoformat()


def as_of(day: date) -> datetime:
    """The snapshot time of a feature partition, and the start of a transactions partition's arrival window:
    midnight at the start of ``day`` (UTC, naive)."""
    return datetime.combine(day, datetime.min.time())


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_from_tags(tags: Mapping[str, str]) -> list[date] | None:
    """The days a run covers, from its tags (asset checks have no partition context); None if unpartitioned."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return days_between(
            date.fromisoformat(tags[RANGE_START_TAG]), date.fromisoformat(tags[RANGE_END_TAG])
        )
    if PARTITION_TAG in tags:
        return [date.fromisoformat(tags[PARTITION_TAG])]
    return None


def clamp(first: date, last: date, first_day: date, today: date | None = None) -> tuple[date, date] | None:
    """The part of ``[first, last]`` that has partitions (``first_day`` up to today), or None if nothing
    does."""
    today = today or datetime.now().date()
    lo, hi = max(first, first_day), min(last, today)
    return (lo, hi) if lo <= hi else None


def range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run materialize the partitions ``first``..``last``."""
    if first == last:
        return {PARTITION_TAG: day_key(first)}
    return {RANGE_START_TAG: day_key(first), RANGE_END_TAG: day_key(last)}
