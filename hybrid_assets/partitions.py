"""Dagster's daily partitions, on the calendar of core/days.py: a partition is an arrival day (decisions in
docs/decisions.md, "Partitions")."""

from __future__ import annotations

import warnings
from datetime import date, timedelta

import dagster as dg

from core.days import DEFAULT_FIRST_DAY, days_between, days_from_tags


def daily(first_day: date) -> dg.DailyPartitionsDefinition:
    """Daily partitions from ``first_day`` up to today (``end_offset=1``: today's partition exists, as rows of
    today arrive)."""
    return dg.DailyPartitionsDefinition(start_date=first_day.isoformat(), end_offset=1)


# What the daily assets are declared on; a source mapping with another `first_day` moves them all to its own
# calendar when the location's definitions load (starting_on below).
DAILY = daily(DEFAULT_FIRST_DAY)
# A backfill of any range is one run per asset: the warehouse does a day range in one query, not N runs.
SINGLE_RUN = dg.BackfillPolicy.single_run()
# the features of day D are computed from the transactions that arrived up to day D - 1
PREVIOUS_DAYS = dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)


def starting_on(defs: dg.Definitions, first_day: date) -> dg.Definitions:
    """``defs`` with every daily asset on partitions that start on ``first_day`` (the source mapping's); the
    same definitions when it is the default day."""
    if first_day == DEFAULT_FIRST_DAY:
        return defs
    calendar = daily(first_day)
    with warnings.catch_warnings():  # map_asset_specs is marked preview; it only swaps each spec's calendar
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_asset_specs(
            func=lambda spec: (
                spec.replace_attributes(partitions_def=calendar) if spec.partitions_def == DAILY else spec
            )
        )


def run_days(context: dg.AssetExecutionContext) -> list[date]:
    """The days of the partition (or partition range) an asset step is materializing."""
    window = context.partition_time_window
    return days_between(window.start.date(), window.end.date() - timedelta(days=1))


def check_days(context: dg.AssetCheckExecutionContext, daily: bool) -> list[date] | None:
    """The partition days the run wrote (a daily asset's check judges those), or None: judge everything.
    Asset checks have no partition context, so the days come from the run's tags."""
    return days_from_tags(context.run.tags) if daily else None
