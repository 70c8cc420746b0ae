"""Churn labels, without Dagster: who was active before a weekly snapshot and bought nothing in the horizon
after it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from core import catalog
from resources.warehouse import PLATFORM_SCHEMA


def data_window(wh) -> tuple[date, date] | None:
    """First purchase day and the day after the last one (features are computed up to it), or None when no
    transaction was accepted yet."""
    lo, hi = wh.query(f"select min(event_ts) lo, max(event_ts) hi from {PLATFORM_SCHEMA}.transactions").row(0)
    if lo is None:
        return None
    return lo.date(), hi.date() + timedelta(days=1)


def compute_labels(
    txns: pl.DataFrame, start: date, end: date, definition: catalog.LabelDefinition | None = None
) -> pl.DataFrame:
    """Churn labels for every snapshot whose label horizon is fully observed (the default definition: weekly
    snapshots, active in the 14 days before, churned if no purchase in the 30 days after)."""
    definition = definition or catalog.LabelDefinition()
    horizon, active_window = timedelta(days=definition.horizon_days), timedelta(days=definition.active_days)
    frames = []
    for day in catalog.snapshots(start, end, definition.every_days):
        if day + horizon > end:
            continue
        snap = datetime.combine(day, datetime.min.time())
        active = (
            txns.filter(pl.col("event_ts").is_between(snap - active_window, snap, closed="left"))
            .select(catalog.ENTITY_KEY)
            .unique()
        )
        bought = txns.filter(pl.col("event_ts").is_between(snap, snap + horizon, closed="left"))[
            catalog.ENTITY_KEY
        ].unique()
        frames.append(
            active.with_columns(
                pl.lit(snap, dtype=pl.Datetime("us")).alias(catalog.EVENT_TS),
                (~pl.col(catalog.ENTITY_KEY).is_in(bought.implode())).cast(pl.Int64).alias("churned"),
            )
        )
    schema = {catalog.ENTITY_KEY: pl.Int64, catalog.EVENT_TS: pl.Datetime("us"), "churned": pl.Int64}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).cast(schema).sort(catalog.EVENT_TS, catalog.ENTITY_KEY)
