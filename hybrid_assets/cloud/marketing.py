"""Marketing events and the engagement features computed from them in the cloud, without Dagster."""

from __future__ import annotations

import polars as pl

from core import catalog

MARKETING_PREFIX = "sources/marketing_events/"
MARKETING_CURATED_KEY = "curated/marketing_events.parquet"


SWITCHED_OFF = (
    "switched off: the source mapping says `marketing_events: false` (no marketing event files), so the "
    "engagement features are not part of this deployment"
)


def switched_off() -> str | None:
    """Why this deployment has no marketing events (the source mapping's ``marketing_events: false``), or
    None."""
    return None if catalog.ENGAGEMENT_VIEW in catalog.active_views() else SWITCHED_OFF


def consolidate_events(store) -> tuple[pl.DataFrame, int]:
    """Every event file under MARKETING_PREFIX in one curated object, and how many files there were."""
    files = [k for k in store.list(MARKETING_PREFIX) if k.endswith(".parquet")]
    if not files:
        raise FileNotFoundError(
            f"no marketing event files under {store.uri(MARKETING_PREFIX)} (a deployment without any says "
            "`marketing_events: false` in the source mapping)"
        )
    events = pl.concat([store.read_parquet(k) for k in files], how="vertical_relaxed")
    store.write_parquet(MARKETING_CURATED_KEY, events)
    return events, len(files)


def write_engagement(store) -> tuple[pl.DataFrame, int]:
    """The engagement view's features for the export's customers and snapshots, one object per day; returns
    them and how many days' objects changed (only those are rewritten)."""
    spine = store.read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.ENTITY_KEY, catalog.EVENT_TS])
    events = store.read_parquet(MARKETING_CURATED_KEY)
    features = catalog.compute_features(
        catalog.features_of(catalog.ENGAGEMENT_VIEW),
        spine.rename({catalog.EVENT_TS: "as_of"}),
        {"marketing_events": events},
    )
    written = 0
    for (snapshot,), rows in features.group_by(catalog.EVENT_TS, maintain_order=True):
        day = snapshot.date()  # the export's partition day: its snapshot is that day's midnight
        written += store.write_parquet_if_changed(catalog.day_object(catalog.ENGAGEMENT_KEY, day), rows)
    return features, written
