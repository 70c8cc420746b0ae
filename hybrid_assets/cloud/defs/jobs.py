"""The cloud location's whole-graph job, and the automation sensor by which its assets follow the on-prem
export (declarative automation: the conditions are in hybrid_assets/defaults.py)."""

import dagster as dg

cloud_refresh = dg.define_asset_job(
    "cloud_refresh",
    selection=dg.AssetSelection.all(),
    description="Refresh the feature store, train, gate and deploy the churn model.",
)

cloud_automation = dg.AutomationConditionSensorDefinition(
    "cloud_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the cloud assets' automation conditions: they rerun after the on-prem export "
    "changes and its blocking checks passed.",
)
