"""Definitions of the ``onprem`` code location (see workspace.yaml)."""

import dagster as dg

from hybrid_assets.onprem.assets import ASSETS
from hybrid_assets.onprem.checks import CHECKS
from hybrid_assets.onprem.sensors import build_new_data_sensor
from hybrid_assets.resources import executor_for, onprem_resources

onprem_refresh = dg.define_asset_job(
    "onprem_refresh",
    selection=dg.AssetSelection.all(),
    description="Validate the raw tables, compute features and labels, and export them to the object store.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[onprem_refresh],
        sensors=[build_new_data_sensor(onprem_refresh)],
        resources=onprem_resources(),
        executor=executor_for(),
    )
