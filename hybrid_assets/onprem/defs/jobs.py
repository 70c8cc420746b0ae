"""The on-prem job: the whole location, the one the sensor and backfills launch."""

import dagster as dg

onprem_refresh = dg.define_asset_job(
    "onprem_refresh",
    selection=dg.AssetSelection.all(),
    description="Validate the raw tables, compute features and labels, and export them to the object store.",
)
