"""Group ``feature_store``: Feast's registry, the cloud-computed engagement features, the offline sources and
the online store, with the gates that keep online and offline consistent."""

from datetime import timedelta

import dagster as dg
import numpy as np
from pydantic import Field

from core import catalog
from core.days import as_of
from expectations import features as suites
from hybrid_assets.cloud import marketing, offline, online_load
from hybrid_assets.cloud.fingerprints import repo_version
from hybrid_assets.defaults import FOLLOW_UPSTREAM, REAPPLY, RETRY, WITH_ITS_ASSET
from hybrid_assets.quality import parquet_check
from resources.feature_store import FeatureStoreResource
from resources.object_store import ObjectStoreResource

GROUP = "feature_store"
ACTIVITY_EXPORT = "customer_feature_export"  # the on-prem location's export: the cloud assets follow it
CONSISTENCY_SAMPLE = 50


@dg.asset(
    group_name=GROUP,
    kinds={"feast"},
    code_version=repo_version(),
    automation_condition=REAPPLY,
    description="`feast apply` of feature_repo/: registers the customer entity, the customer_activity and "
    "marketing_engagement feature views (schemas from the catalog) and the churn_prediction feature service in "
    "the Feast registry; re-applied when the catalog or the repo changes. A failure means the repo is invalid "
    "or the registry could not be written; Feast keeps the previous registry.",
)
def feature_registry(context: dg.AssetExecutionContext, feature_store: FeatureStoreResource):
    store = feature_store.store()
    objects = feature_store.repo_objects()
    store.apply(list(objects.values()))
    return dg.MaterializeResult(
        metadata={"objects": sorted(objects), "feast_project": store.project, "repo_version": repo_version()}
    )


@dg.asset(
    group_name=GROUP,
    deps=["marketing_events", ACTIVITY_EXPORT],
    kinds={"polars", "parquet"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    description="Marketing engagement features (emails sent, open and click rates, days since last click) for "
    "the same customers and snapshots as the on-prem export, computed in the cloud from marketing_events and "
    "written as one object per day to offline/marketing_engagement/ (only the days whose values changed are "
    "rewritten): Feast's second source. A failure means the export or the curated events are missing, or the "
    "object store was unreachable.",
)
def marketing_engagement(object_store: ObjectStoreResource) -> dg.MaterializeResult:
    if marketing.switched_off():
        return dg.MaterializeResult(metadata={"switched_off": marketing.SWITCHED_OFF})
    store = object_store.client()
    features, written = marketing.write_engagement(store)
    days = features[catalog.EVENT_TS].n_unique()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": features.height,
            "days": days,
            "days_written": written,  # only days whose values changed are rewritten
            "days_unchanged": days - written,
            "uri": store.uri(catalog.ENGAGEMENT_KEY),
        }
    )


class OnlineLoadConfig(dg.Config):
    full_reload: bool = Field(
        default=False,
        description="Load every daily object again, not only the new or changed ones (after the online store "
        "lost its data, for instance).",
    )


@dg.asset(
    group_name=GROUP,
    deps=["feature_registry", ACTIVITY_EXPORT, "marketing_engagement"],
    kinds={"feast", "sqlite", "redis"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    # the endpoint serves yesterday's features at worst: warn after 26 h without a load, fail after 36 h
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=36), warn_window=timedelta(hours=26)
    ),
    description="The Feast online store (SQLite file, or Redis in the hybrid profile), loaded with each "
    "customer's latest feature values from both feature views: what /predict reads at inference time. "
    "Incremental: each run loads only the daily objects that are new or changed since the last load (a "
    "manifest of their checksums sits at online/manifest.json). It reloads everything when the online store "
    "or the Feast repo changed, or when the store lost the rows it was loaded with; `full_reload: true` in the "
    "run config forces it. Loaded by resources/online_loader.py (the same bytes as Feast's materialize, "
    "streamed, much faster; an older row never overwrites a newer one, so old days can load in any order). A "
    "failure names the online store that could not be loaded; the endpoint keeps serving the values already "
    "there.",
)
def online_features(
    context: dg.AssetExecutionContext,
    config: OnlineLoadConfig,
    feature_store: FeatureStoreResource,
    object_store: ObjectStoreResource,
):
    store = feature_store.store()
    objects = object_store.client()
    state = {"online_store": feature_store.describe_online(), "feast_repo": repo_version()}
    previous = online_load.read_manifest(objects)
    full = config.full_reload or online_load.state_changed(previous, state)
    if not full:
        with online_load.naming_the_store("reading", feature_store.describe_online()):
            full = online_load.online_lost_rows(store, objects, previous)
        if full:
            context.log.warning(
                "the online store lacks rows it was loaded with (restarted empty?): full reload"
            )
    todo, current = online_load.changed_objects(objects, previous.get("objects", {}), full)
    if not current:
        raise dg.Failure(
            description=f"no feature objects under {objects.uri(catalog.ACTIVITY_EXPORT_KEY)} yet"
        )
    with online_load.naming_the_store("loading", feature_store.describe_online()):
        reports = online_load.load_objects(store, objects, todo)
    # only after every view loaded: a failed load is redone in full for the objects it had not recorded
    online_load.write_manifest(objects, state, current)
    newest = max(k for k in current if k.startswith(catalog.ACTIVITY_EXPORT_KEY))
    loaded_days = sorted({catalog.object_day(k) for keys in todo.values() for k in keys})
    return dg.MaterializeResult(
        metadata={
            "latest_feature_timestamp": str(as_of(catalog.object_day(newest))),
            "full_reload": full,
            "days_loaded": len(loaded_days),
            "first_day_loaded": str(loaded_days[0]) if loaded_days else "none",
            "last_day_loaded": str(loaded_days[-1]) if loaded_days else "none",
            "objects_loaded": sum(len(k) for k in todo.values()),
            "objects_unchanged": len(current) - sum(len(k) for k in todo.values()),
            "feature_views": list(reports),
            **{f"{view}_load": dg.MetadataValue.json(r.as_metadata()) for view, r in reports.items()},
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=[ACTIVITY_EXPORT, "marketing_engagement"],
    kinds={"parquet", "s3"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    description="Feast's offline store: each feature view's daily objects (exports/customer_activity/, "
    "offline/marketing_engagement/) compacted into one Parquet object per view (offline/<view>.parquet), which "
    "the feature views' sources point at. Feast's point-in-time join reads one object per view instead of one "
    "per day (16x faster at 181 days). Rewritten only when a day changed. A failure means the object store was "
    "unreachable; training keeps the previous compaction.",
)
def offline_features(object_store: ObjectStoreResource) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=offline.compact_offline(object_store.client()))


marketing_engagement_contract = parquet_check(
    "marketing_engagement",
    catalog.ENGAGEMENT_KEY,
    lambda: suites.feature_suite(catalog.ENGAGEMENT_VIEW, "marketing_engagement"),
    "GX suite derived from the catalog, on every daily object under offline/marketing_engagement/: "
    "exactly the catalog's engagement columns, one row per customer and snapshot, non-null and inside their "
    "declared ranges. A failure blocks the online store load and the training set in the run; they keep "
    "their last good output.",
    switched_off=marketing.switched_off,
)


def latest_offline_features(object_store: ObjectStoreResource):
    """Each customer's newest row of both feature views: what the online store must hold."""
    return online_load.newest_feature_rows(object_store.client())


@dg.asset_check(
    asset="online_features",
    name="online_matches_offline",
    blocking=True,
    automation_condition=WITH_ITS_ASSET,
    description="Reads 50 sampled customers back through Feast's online API (what /predict sees) and compares "
    "every feature with their newest rows in the offline Parquet sources of both feature views. A failure means "
    "the online store serves stale or different values, so predictions would not use the features the model "
    "was trained on; the run fails (nothing is downstream of online_features) and online_features needs a rerun.",
)
def online_matches_offline(
    feature_store: FeatureStoreResource, object_store: ObjectStoreResource
) -> dg.AssetCheckResult:
    latest = latest_offline_features(object_store)
    offline = latest.sample(n=min(CONSISTENCY_SAMPLE, latest.height), seed=7).sort(catalog.ENTITY_KEY)
    store = feature_store.store()
    with online_load.naming_the_store("reading", feature_store.describe_online()):
        online = store.get_online_features(
            features=store.get_feature_service(catalog.FEATURE_SERVICE),
            entity_rows=[{catalog.ENTITY_KEY: int(i)} for i in offline[catalog.ENTITY_KEY]],
        ).to_dict()
    mismatches = []
    for name in catalog.feature_names():
        want = offline[name].to_numpy().astype(float)
        got = np.array([np.nan if v is None else v for v in online[name]], dtype=float)
        bad = ~np.isclose(want, got, equal_nan=False)
        if bad.any():
            ids = offline[catalog.ENTITY_KEY].to_numpy()[bad][:3].tolist()
            mismatches.append(f"{name}: {int(bad.sum())} customers differ, e.g. {ids}")
    return dg.AssetCheckResult(
        passed=not mismatches,
        metadata={
            "customers_compared": offline.height,
            "features_compared": len(catalog.feature_names()),
            "mismatches": dg.MetadataValue.md("\n".join(f"- {m}" for m in mismatches) or "none"),
        },
        description="; ".join(mismatches) or f"{offline.height} customers identical online and offline",
    )
