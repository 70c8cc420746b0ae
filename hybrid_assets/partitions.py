"""Dagster's daily partitions, on the calendar of core/days.py: a partition is an arrival day (decisions in
docs/decisions.md, "Partitions")."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from core.days import FIRST_DAY, days_between, days_from_tags

DAILY = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1)
# A backfill of any range is one run per asset: the warehouse does a day range in one query, not N runs.
SINGLE_RUN = dg.BackfillPolicy.single_run()
# the features of day D are computed from the transactions that arrived up to day D - 1
PREVIOUS_DAYS = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def run_days(context: dg.AssetExecutionContext) -> list[date]:
    """The days of the partition (or partition range) an asset step is materializing."""
    window = context.partition_time_window
    return days_between(window.start.date(), window.end.date() - timedelta(days=1))


def check_days(context: dg.AssetCheckExecutionContext, daily: bool) -> list[date] | None:
    """The partition days the run wrote (a daily asset's check judges those), or None: judge everything.
    Asset checks have no partition context, so the days come from the run's tags."""
    return days_from_tags(context.run.tags) if daily else None
