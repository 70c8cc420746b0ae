"""Definitions of the ``cloud`` code location (see workspace.yaml)."""

import dagster as dg

from hybrid_assets.cloud.assets import ASSETS
from hybrid_assets.cloud.checks import CHECKS
from hybrid_assets.cloud.sensors import (
    RETRAIN_SELECTION,
    build_marketing_sensor,
    build_retraining,
    cloud_automation,
)
from hybrid_assets.resources import cloud_resources, executor_for

cloud_refresh = dg.define_asset_job(
    "cloud_refresh",
    selection=dg.AssetSelection.all(),
    description="Refresh the feature store, train, gate and deploy the churn model.",
)
marketing_refresh = dg.define_asset_job(
    "marketing_refresh", selection=dg.AssetSelection.assets("marketing_events")
)
retrain = dg.define_asset_job(
    "retrain",
    selection=RETRAIN_SELECTION,
    description="Rebuild the training set from the newest labels, retrain the churn model, gate and deploy.",
)
retraining_schedule, retraining_sensor = build_retraining(retrain)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        asset_checks=CHECKS,
        jobs=[cloud_refresh, marketing_refresh, retrain],
        schedules=[retraining_schedule],
        sensors=[build_marketing_sensor(marketing_refresh), cloud_automation, retraining_sensor],
        resources=cloud_resources(),
        executor=executor_for(),
    )
