"""Feast's offline sources, without Dagster: each feature view's daily objects compacted into one object."""

from __future__ import annotations

from core import catalog


def compact_offline(store) -> dict:
    """Feast's offline sources: each view's daily objects compacted into one object per view, rewritten only
    when a day changed. Returns the metadata of the compaction."""
    meta, frames = {}, {}
    for view in catalog.active_views():
        frame = store.read_parquet(catalog.VIEW_SOURCE_KEY[view]).sort(catalog.EVENT_TS, catalog.ENTITY_KEY)
        written = store.write_parquet_if_changed(catalog.VIEW_OFFLINE_KEY[view], frame)
        meta[f"{view}_rows"] = frame.height
        meta[f"{view}_rewritten"] = written
        frames[view] = frame
    frame = frames[catalog.ACTIVITY_VIEW]
    first, last = frame[catalog.EVENT_TS].min(), frame[catalog.EVENT_TS].max()
    return {
        "dagster/row_count": frame.height,
        "first_snapshot": str(first),
        "last_snapshot": str(last),
        **meta,
    }
