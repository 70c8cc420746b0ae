"""Cloud assets: object store -> Feast (registry, offline, online) -> training set -> model -> deployment.

Upstream keys ``customer_feature_export`` and ``churn_label_export`` belong to the ``onprem`` location; these
assets follow them through declarative automation (eager, and only once the upstream gates passed).
"""

import hashlib
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from hybrid_assets import catalog
from hybrid_assets.cloud import training
from resources.feature_store import FeatureStoreResource
from resources.model_registry import MODEL_NAME, ModelRegistryResource
from resources.object_store import ObjectStoreResource

MARKETING_PREFIX = "sources/marketing_events/"
MARKETING_CURATED_KEY = "curated/marketing_events.parquet"
CLOUD_SOURCES, FEATURE_STORE, TRAINING, MODEL, DEPLOYMENT = (
    "cloud_sources",
    "feature_store",
    "training",
    "model",
    "deployment",
)
ACTIVITY_EXPORT, LABEL_EXPORT = "customer_feature_export", "churn_label_export"
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)
_A = dg.AutomationCondition
# eager() reacts to upstream updates but, by design, not to assets that were already missing when the
# automation sensor first saw them; on a fresh deployment everything is. So also fill a missing asset once
# its upstream exists (and stop after a failure instead of retrying it on every tick).
FILL_MISSING = (
    _A.missing()
    & ~_A.any_deps_missing()
    & ~_A.in_progress()
    & ~_A.any_deps_in_progress()
    & ~_A.execution_failed()
).with_label("fill_missing")
FOLLOW_UPSTREAM = (_A.eager() | FILL_MISSING) & _A.all_deps_blocking_checks_passed()


def _repo_version() -> str:
    """Code version of the Feast repo: changes when the catalog or the repo definition changes."""
    from hybrid_assets.settings import FEATURE_REPO, REPO_ROOT

    digest = hashlib.sha256()
    for path in (REPO_ROOT / "hybrid_assets" / "catalog.py", FEATURE_REPO / "repo.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dg.asset(
    group_name=CLOUD_SOURCES,
    kinds={"parquet", "s3"},
    retry_policy=RETRY,
    description="Marketing email events (sent / open / click) that the marketing system drops into the object "
    "store, consolidated and typed. Non-sensitive: customer_id, campaign, event_type, event_ts.",
)
def marketing_events(object_store: ObjectStoreResource) -> dg.MaterializeResult:
    store = object_store.client()
    files = [k for k in store.list(MARKETING_PREFIX) if k.endswith(".parquet")]
    if not files:
        raise dg.Failure(description=f"no marketing event files under {store.uri(MARKETING_PREFIX)}")
    events = pl.concat([store.read_parquet(k) for k in files], how="vertical_relaxed")
    store.write_parquet(MARKETING_CURATED_KEY, events)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": events.height,
            "files": len(files),
            "by_type": dict(events.group_by("event_type").len().iter_rows()),
        }
    )


@dg.asset(
    group_name=FEATURE_STORE,
    kinds={"feast"},
    code_version=_repo_version(),
    automation_condition=_A.eager() | _A.code_version_changed() | FILL_MISSING,
    description="`feast apply` of feature_repo/: the customer entity, the customer_activity and "
    "marketing_engagement feature views (schemas from the catalog) and the churn_prediction feature service.",
)
def feature_registry(context: dg.AssetExecutionContext, feature_store: FeatureStoreResource):
    store = feature_store.store()
    objects = feature_store.repo_objects()
    store.apply(list(objects.values()))
    return dg.MaterializeResult(
        metadata={"objects": sorted(objects), "feast_project": store.project, "repo_version": _repo_version()}
    )


@dg.asset(
    group_name=FEATURE_STORE,
    deps=["marketing_events", ACTIVITY_EXPORT],
    kinds={"polars", "parquet"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    description="Marketing engagement features (emails sent, open and click rates, days since last click) for "
    "the same customers and snapshots as the on-prem export, computed in the cloud. Feast's second source.",
)
def marketing_engagement(object_store: ObjectStoreResource) -> dg.MaterializeResult:
    store = object_store.client()
    spine = store.read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.ENTITY_KEY, catalog.EVENT_TS])
    events = store.read_parquet(MARKETING_CURATED_KEY)
    features = catalog.compute_features(
        catalog.features_of(catalog.ENGAGEMENT_VIEW),
        spine.rename({catalog.EVENT_TS: "as_of"}),
        {"marketing_events": events},
    )
    store.write_parquet(catalog.ENGAGEMENT_KEY, features)
    return dg.MaterializeResult(
        metadata={"dagster/row_count": features.height, "uri": store.uri(catalog.ENGAGEMENT_KEY)}
    )


@dg.asset(
    group_name=FEATURE_STORE,
    deps=["feature_registry", ACTIVITY_EXPORT, "marketing_engagement"],
    kinds={"feast", "sqlite", "redis"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    description="The Feast online store, loaded with each customer's latest feature values from both feature "
    "views (what /predict reads at inference time).",
)
def online_features(feature_store: FeatureStoreResource, object_store: ObjectStoreResource):
    store = feature_store.store()
    spine = object_store.client().read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.EVENT_TS])
    latest = spine[catalog.EVENT_TS].max()
    start = spine[catalog.EVENT_TS].min() - timedelta(seconds=1)
    try:
        store.materialize(start_date=start, end_date=latest + timedelta(seconds=1))
    except Exception as exc:  # name the store: "Connection refused" alone does not say which service
        raise RuntimeError(
            f"loading the online store ({feature_store.describe_online()}) failed: {exc}"
        ) from exc
    return dg.MaterializeResult(
        metadata={
            "latest_feature_timestamp": str(latest),
            "entities": spine.filter(pl.col(catalog.EVENT_TS) == latest).height,
            "feature_views": [catalog.ACTIVITY_VIEW, catalog.ENGAGEMENT_VIEW],
        }
    )


@dg.asset(
    group_name=TRAINING,
    deps=["feature_registry", LABEL_EXPORT, ACTIVITY_EXPORT, "marketing_engagement"],
    kinds={"feast", "parquet"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    description="Point-in-time-correct training set: for every labelled (customer, snapshot), Feast joins the "
    "feature values as of that snapshot from the churn_prediction service (get_historical_features).",
)
def training_set(
    feature_store: FeatureStoreResource, object_store: ObjectStoreResource
) -> dg.MaterializeResult:
    store = feature_store.store()
    objects = object_store.client()
    labels = objects.read_parquet(catalog.LABELS_EXPORT_KEY)
    service = store.get_feature_service(catalog.FEATURE_SERVICE)
    entity_df = labels.to_pandas()
    entity_df[catalog.EVENT_TS] = entity_df[catalog.EVENT_TS].dt.tz_localize("UTC")
    joined = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    frame = pl.from_pandas(joined).with_columns(
        pl.col(catalog.EVENT_TS).dt.replace_time_zone(None).cast(pl.Datetime("us"))
    )
    ordered = [catalog.ENTITY_KEY, catalog.EVENT_TS, "churned", *catalog.feature_names()]
    frame = frame.select(ordered).sort(catalog.EVENT_TS, catalog.ENTITY_KEY)
    objects.write_parquet(catalog.TRAINING_SET_KEY, frame)
    snaps = frame[catalog.EVENT_TS].unique().sort()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "snapshots": [f"{s:%Y-%m-%d}" for s in snaps],
            "churn_rate": float(frame["churned"].mean() or 0),
            "rows_missing_features": int(
                frame.select(catalog.feature_names()).null_count().sum_horizontal()[0]
            ),
        }
    )


@dg.asset(
    group_name=MODEL,
    deps=["training_set"],
    kinds={"lightgbm"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    output_required=False,
    description="LightGBM churn model trained on the earlier snapshots and evaluated on the last ones (AUC, "
    "log loss, calibration, feature importance), registered as a new version. Retraining policy: a new "
    "version only when the training window has a labelled snapshot the latest version did not see.",
)
def churn_model(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    model_registry: ModelRegistryResource,
):
    frame = object_store.client().read_parquet(catalog.TRAINING_SET_KEY)
    registry = model_registry.client()
    features = catalog.feature_names()
    split = training.time_split(frame)
    versions = registry.versions()
    if versions:
        last = registry.metadata(versions[-1])
        window = last.get("training_window", {})
        if (
            window.get("holdout_snapshots") == split.holdout_snapshots
            and last.get("features") == features
            and last.get("params") == training.PARAMS
        ):
            context.log.info(
                f"retraining policy: {versions[-1]} already covers the labelled snapshots "
                f"up to {split.holdout_snapshots[-1]}; no new version"
            )
            return
    booster = training.train(split.train, features)
    labels = split.holdout["churned"].to_numpy()
    proba = booster.predict(training.matrix(split.holdout, features))
    metrics = training.evaluate(labels, proba)
    metrics["recency_baseline_auc"] = training.recency_baseline_auc(split.holdout)
    meta = {
        "model": MODEL_NAME,
        "feature_service": catalog.FEATURE_SERVICE,
        "features": features,
        "params": training.PARAMS,
        "num_rounds": training.NUM_ROUNDS,
        "metrics": metrics,
        "feature_importance": training.importance(booster, features),
        "training_window": {
            "train_snapshots": split.train_snapshots,
            "holdout_snapshots": split.holdout_snapshots,
            "train_rows": split.train.height,
            "holdout_rows": split.holdout.height,
        },
        "trained_at": datetime.now().isoformat(),
    }
    version, is_new = registry.register(booster.model_to_string(), meta)
    top = list(meta["feature_importance"].items())[:8]
    yield dg.MaterializeResult(
        metadata={
            "version": version,
            "new_version": is_new,
            "auc": metrics["auc"],
            "log_loss": metrics["log_loss"],
            "brier": metrics["brier"],
            "expected_calibration_error": metrics["expected_calibration_error"],
            "recency_baseline_auc": metrics["recency_baseline_auc"],
            "train_rows": split.train.height,
            "holdout_rows": split.holdout.height,
            "holdout_snapshots": split.holdout_snapshots,
            "feature_importance": dg.MetadataValue.md(
                "| feature | gain share |\n|---|---|\n" + "\n".join(f"| {f} | {g:.3f} |" for f, g in top)
            ),
            "calibration": dg.MetadataValue.json(metrics["calibration"]),
        }
    )


def latest_model_version(instance: dg.DagsterInstance) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey("churn_model"))
    if event is None or event.asset_materialization is None:
        raise dg.Failure(description="churn_model has not been materialized yet")
    return event.asset_materialization.metadata["version"].value


@dg.asset(
    group_name=DEPLOYMENT,
    deps=["churn_model"],
    kinds={"fastapi"},
    automation_condition=FOLLOW_UPSTREAM,
    description="The production model pointer that the endpoint follows. Runs only when churn_model's "
    "quality gate passed: AUC above the floor and no worse than the current production model.",
)
def churn_model_deployment(
    context: dg.AssetExecutionContext, model_registry: ModelRegistryResource
) -> dg.MaterializeResult:
    registry = model_registry.client()
    version = latest_model_version(context.instance)
    current = registry.production()
    if current and current["version"] == version:
        pointer, changed = current, False
    else:
        pointer, changed = (
            registry.promote(version, reason=f"passed the quality gate in run {context.run.run_id}"),
            True,
        )
    return dg.MaterializeResult(
        metadata={
            "served_version": pointer["version"],
            "promoted": changed,
            "previous_version": (current or {}).get("version", "none"),
            "auc": pointer["metrics"].get("auc"),
            "promoted_at": pointer["promoted_at"],
        }
    )


ASSETS = [
    marketing_events,
    feature_registry,
    marketing_engagement,
    online_features,
    training_set,
    churn_model,
    churn_model_deployment,
]
