"""Cloud-side triggers: new marketing files in the object store, and the automation sensor that makes the
cloud assets follow the on-prem export."""

import dagster as dg

from hybrid_assets.cloud.assets import MARKETING_PREFIX
from resources.object_store import ObjectStoreResource


def build_marketing_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        name="new_marketing_events",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests a run of marketing_events when new event files land in the object store.",
    )
    def new_marketing_events(context: dg.SensorEvaluationContext, object_store: ObjectStoreResource):
        files = object_store.client().list(MARKETING_PREFIX)
        cursor = files[-1] if files else ""
        if not files or cursor == context.cursor:
            return dg.SkipReason("no new marketing event files")
        context.update_cursor(cursor)
        return dg.RunRequest(run_key=cursor)

    return new_marketing_events


cloud_automation = dg.AutomationConditionSensorDefinition(
    "cloud_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Evaluates the cloud assets' automation conditions: they rerun after the on-prem export "
    "changes and its blocking checks passed.",
)
