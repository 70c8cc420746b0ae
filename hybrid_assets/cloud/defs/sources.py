"""Group ``cloud_sources``: data that starts in the cloud (the marketing system's event files), its GX gate, and
the sensor that runs it when new files land."""

import dagster as dg

from expectations import features as suites
from hybrid_assets.cloud import marketing
from hybrid_assets.defaults import RETRY
from hybrid_assets.quality import parquet_check
from resources.object_store import ObjectStoreResource

GROUP = "cloud_sources"


@dg.asset(
    group_name=GROUP,
    kinds={"parquet", "s3"},
    retry_policy=RETRY,
    description="Marketing email events (sent / open / click) that the marketing system drops as Parquet files "
    "under sources/marketing_events/ in the object store, consolidated into curated/marketing_events.parquet. "
    "Non-sensitive: customer_id, campaign, event_type, event_ts. A failure means no event file has arrived yet "
    "or the object store was unreachable.",
)
def marketing_events(object_store: ObjectStoreResource) -> dg.MaterializeResult:
    if marketing.switched_off():
        return dg.MaterializeResult(metadata={"switched_off": marketing.SWITCHED_OFF})
    try:
        events, files = marketing.consolidate_events(object_store.client())
    except FileNotFoundError as exc:
        raise dg.Failure(description=str(exc)) from None
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": events.height,
            "files": files,
            "by_type": dict(events.group_by("event_type").len().iter_rows()),
        }
    )


marketing_events_contract = parquet_check(
    "marketing_events",
    marketing.MARKETING_CURATED_KEY,
    suites.marketing_events_suite,
    "GX suite on the consolidated marketing events (curated/marketing_events.parquet in the object store): "
    "the expected columns, at least one row, customer_id and event_ts present, event_type only sent, open "
    "or click. A failure means the marketing system dropped a malformed file; it blocks "
    "marketing_engagement and everything after it, which keep their last good output.",
    switched_off=marketing.switched_off,
)

marketing_refresh = dg.define_asset_job(
    "marketing_refresh", selection=dg.AssetSelection.assets("marketing_events")
)


@dg.sensor(
    name="new_marketing_events",
    job=marketing_refresh,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a run of marketing_events when new event files land in the object store.",
)
def new_marketing_events(context: dg.SensorEvaluationContext, object_store: ObjectStoreResource):
    files = object_store.client().list(marketing.MARKETING_PREFIX)
    cursor = files[-1] if files else ""
    if not files or cursor == context.cursor:
        return dg.SkipReason("no new marketing event files")
    context.update_cursor(cursor)
    return dg.RunRequest(run_key=cursor)
