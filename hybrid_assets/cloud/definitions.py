"""Definitions of the ``cloud`` code location (see workspace.yaml)."""

import dagster as dg

from hybrid_assets.cloud.assets import ASSETS
from hybrid_assets.cloud.checks import CHECKS
from hybrid_assets.cloud.sensors import build_marketing_sensor, cloud_automation
from hybrid_assets.resources import cloud_resources, executor_for

cloud_refresh = dg.define_asset_job(
    "cloud_refresh",
    selection=dg.AssetSelection.all(),
    description="Refresh the feature store, train, gate and deploy the churn model.",
)
marketing_refresh = dg.define_asset_job(
    "marketing_refresh", selection=dg.AssetSelection.assets("marketing_events")
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[cloud_refresh, marketing_refresh],
        sensors=[build_marketing_sensor(marketing_refresh), cloud_automation],
        resources=cloud_resources(),
        executor=executor_for(),
    )
