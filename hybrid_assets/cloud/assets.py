"""Cloud assets: object store -> Feast (registry, offline, online) -> training set -> model -> deployment.

Upstream keys ``customer_feature_export`` and ``churn_label_export`` belong to the ``onprem`` location; these
assets follow them through declarative automation (eager, and only once the upstream gates passed).
"""

import hashlib
import json
from datetime import datetime, timedelta

import dagster as dg
import polars as pl
from pydantic import Field

from core import catalog
from core.days import as_of
from hybrid_assets.cloud import gate, training
from hybrid_assets.quality import QualityPolicy
from resources.dask_cluster import DaskResource, worker_addresses
from resources.feature_store import FeatureStoreResource
from resources.model_registry import MODEL_NAME, ModelRegistryResource
from resources.object_store import ObjectStoreResource

MARKETING_PREFIX = "sources/marketing_events/"
MARKETING_CURATED_KEY = "curated/marketing_events.parquet"
ONLINE_MANIFEST_KEY = "online/manifest.json"
TRAINING_INPUTS_KEY = "training/churn_training_set.inputs.json"  # the fingerprint the training set was built from  # which daily objects (by checksum) the online store holds
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
# The export is daily-partitioned and most of its days (those before the data, say) are never materialized:
# "any dependency missing" would hold forever. What matters is that every dependency has *some* data.
DEPS_PRESENT = _A.all_deps_match(~_A.missing()).with_label("every_dep_has_data")
# eager() reacts to upstream updates but, by design, not to assets that were already missing when the
# automation sensor first saw them; on a fresh deployment everything is. So also fill a missing asset once
# its upstream exists (and stop after a failure instead of retrying it on every tick).
FILL_MISSING = (
    _A.missing() & ~_A.in_progress() & ~_A.any_deps_in_progress() & ~_A.execution_failed()
).with_label("fill_missing")
EAGER = _A.eager().without(~_A.any_deps_missing()).with_label("eager")
FOLLOW_UPSTREAM = (EAGER | FILL_MISSING) & DEPS_PRESENT & _A.all_deps_blocking_checks_passed()


def _repo_version() -> str:
    """Code version of the Feast repo: changes when the catalog or the repo definition changes."""
    from core.settings import FEATURE_REPO, REPO_ROOT

    digest = hashlib.sha256()
    for path in (REPO_ROOT / "core" / "catalog.py", FEATURE_REPO / "repo.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dg.asset(
    group_name=CLOUD_SOURCES,
    kinds={"parquet", "s3"},
    retry_policy=RETRY,
    description="Marketing email events (sent / open / click) that the marketing system drops as Parquet files "
    "under sources/marketing_events/ in the object store, consolidated into curated/marketing_events.parquet. "
    "Non-sensitive: customer_id, campaign, event_type, event_ts. A failure means no event file has arrived yet "
    "or the object store was unreachable.",
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
        metadata={"objects": sorted(objects), "feast_project": store.project, "repo_version": _repo_version()}
    )


@dg.asset(
    group_name=FEATURE_STORE,
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
    store = object_store.client()
    spine = store.read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.ENTITY_KEY, catalog.EVENT_TS])
    events = store.read_parquet(MARKETING_CURATED_KEY)
    features = catalog.compute_features(
        catalog.features_of(catalog.ENGAGEMENT_VIEW),
        spine.rename({catalog.EVENT_TS: "as_of"}),
        {"marketing_events": events},
    )
    written = 0
    for (snapshot,), rows in features.group_by(catalog.EVENT_TS, maintain_order=True):
        day = snapshot.date()  # the export's partition day: its snapshot is that day's midnight
        written += store.write_parquet_if_changed(catalog.day_object(catalog.ENGAGEMENT_KEY, day), rows)
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


def newest_feature_rows(store) -> pl.DataFrame:
    """Both feature views' rows of the newest day they both have. Every signed-up customer has a row on every
    day, so these are each customer's newest values: what the online store must hold and what is served."""
    days = [
        {catalog.object_day(k) for k in store.list(prefix)} for prefix in catalog.VIEW_SOURCE_KEY.values()
    ]
    common = set.intersection(*days)
    if not common:
        raise FileNotFoundError("no day with objects of both feature views in the object store yet")
    newest = max(common)
    frames = [store.read_parquet(catalog.day_object(p, newest)) for p in catalog.VIEW_SOURCE_KEY.values()]
    return frames[0].join(frames[1], on=[catalog.ENTITY_KEY, catalog.EVENT_TS], how="inner")


class OnlineLoadConfig(dg.Config):
    full_reload: bool = Field(
        default=False,
        description="Load every daily object again, not only the new or changed ones (after the online store "
        "lost its data, for instance).",
    )


def _changed_objects(objects, manifest: dict, full: bool) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Per feature view, the daily source objects to load (new or changed since the last load, or all of
    them), and the checksums of every current object."""
    current: dict[str, str] = {}
    todo: dict[str, dict[str, str]] = {}
    for view, prefix in catalog.VIEW_SOURCE_KEY.items():
        sums = objects.checksums(prefix)
        current.update(sums)
        todo[view] = {k: c for k, c in sorted(sums.items()) if full or manifest.get(k) != c}
    return todo, current


def _online_lost_rows(store, objects, manifest: dict) -> bool:
    """Does the online store miss customers of the newest day it was loaded with? (Redis restarted without
    its data, say.) Then an incremental load would leave it empty: reload everything instead."""
    keys = sorted(k for k in manifest.get("objects", {}) if k.startswith(catalog.ACTIVITY_EXPORT_KEY))
    if not keys:
        return True
    try:
        ids = objects.read_parquet(keys[-1], columns=[catalog.ENTITY_KEY])[catalog.ENTITY_KEY].head(20)
    except FileNotFoundError:
        return True
    feature = catalog.feature_names(catalog.ACTIVITY_VIEW)[0]
    values = store.get_online_features(
        features=[f"{catalog.ACTIVITY_VIEW}:{feature}"],
        entity_rows=[{catalog.ENTITY_KEY: int(i)} for i in ids],
    ).to_dict()[feature]
    return any(v is None for v in values)


@dg.asset(
    group_name=FEATURE_STORE,
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

    from resources.online_loader import load_view

    store = feature_store.store()
    objects = object_store.client()
    state = {"online_store": feature_store.describe_online(), "feast_repo": _repo_version()}
    try:
        previous = json.loads(objects.get_bytes(ONLINE_MANIFEST_KEY))
    except FileNotFoundError:
        previous = {}
    full = config.full_reload or {k: previous.get(k) for k in state} != state
    if not full:
        try:
            full = _online_lost_rows(store, objects, previous)
        except Exception as exc:  # name the store: "Connection refused" alone does not say which service
            raise RuntimeError(
                f"reading the online store ({feature_store.describe_online()}) failed: {exc}"
            ) from exc
        if full:
            context.log.warning(
                "the online store lacks rows it was loaded with (restarted empty?): full reload"
            )
    todo, current = _changed_objects(objects, previous.get("objects", {}), full)
    if not current:
        raise dg.Failure(
            description=f"no feature objects under {objects.uri(catalog.ACTIVITY_EXPORT_KEY)} yet"
        )
    reports = {}
    try:
        for view, keys in todo.items():
            # newest day first: each customer's newest row is sent once, older days' rows are dropped on the way
            batches = (batch for key in sorted(keys, reverse=True) for batch in objects.iter_batches(key))
            reports[view] = load_view(store, view, batches, newest_first=True)
            # what materialize records too: the Feast registry (and UI) know which interval is online
            if keys:
                days = [catalog.object_day(k) for k in keys]
                start, end = as_of(min(days)), as_of(max(days))
                store.registry.apply_materialization(store.get_feature_view(view), store.project, start, end)
    except Exception as exc:  # name the store: "Connection refused" alone does not say which service
        raise RuntimeError(
            f"loading the online store ({feature_store.describe_online()}) failed: {exc}"
        ) from exc
    # only after every view loaded: a failed load is redone in full for the objects it had not recorded
    objects.put_bytes(ONLINE_MANIFEST_KEY, json.dumps({**state, "objects": current}, indent=1).encode())
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
    group_name=FEATURE_STORE,
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
    store = object_store.client()
    meta = {}
    for view, prefix in catalog.VIEW_SOURCE_KEY.items():
        frame = store.read_parquet(prefix).sort(catalog.EVENT_TS, catalog.ENTITY_KEY)
        written = store.write_parquet_if_changed(catalog.VIEW_OFFLINE_KEY[view], frame)
        meta[f"{view}_rows"] = frame.height
        meta[f"{view}_rewritten"] = written
    first, last = frame[catalog.EVENT_TS].min(), frame[catalog.EVENT_TS].max()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "first_snapshot": str(first),
            "last_snapshot": str(last),
            **meta,
        }
    )


def _training_inputs(objects) -> str:
    """A fingerprint of everything the training set is built from: the labels, Feast's compacted sources and
    the Feast repo (features, service). Equal fingerprints give the same training set."""
    sums = {
        key: objects.checksum(key) for key in (catalog.LABELS_EXPORT_KEY, *catalog.VIEW_OFFLINE_KEY.values())
    }
    sums["feast_repo"] = _repo_version()
    return hashlib.sha256(json.dumps(sums, sort_keys=True).encode()).hexdigest()[:16]


@dg.asset(
    group_name=TRAINING,
    deps=["feature_registry", LABEL_EXPORT, "offline_features"],
    kinds={"feast", "parquet"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    description="Point-in-time-correct training set: for every labelled (customer, snapshot) of "
    "churn_label_export, Feast joins the feature values as of that snapshot from the churn_prediction service "
    "(get_historical_features); written to training/churn_training_set.parquet. Rebuilt only when its inputs "
    "changed (the labels, Feast's compacted sources or the Feast repo; `rebuilt` in the metadata says which "
    "happened). A failure means Feast could not read its registry or offline sources; no new model is trained "
    "until it succeeds.",
)
def training_set(
    context: dg.AssetExecutionContext,
    feature_store: FeatureStoreResource,
    object_store: ObjectStoreResource,
    dask: DaskResource,
) -> dg.MaterializeResult:
    objects = object_store.client()
    inputs = _training_inputs(objects)
    try:
        built_from = json.loads(objects.get_bytes(TRAINING_INPUTS_KEY)).get("inputs")
    except FileNotFoundError:
        built_from = None
    if built_from == inputs and objects.exists(catalog.TRAINING_SET_KEY):
        # nothing new since the last build: the same labels and features give the same rows (minutes saved)
        context.log.info(f"training set inputs unchanged ({inputs}): the Feast join is skipped")
        return _training_set_result(objects.read_parquet(catalog.TRAINING_SET_KEY), inputs, rebuilt=False)
    store = feature_store.store()
    labels = objects.read_parquet(catalog.LABELS_EXPORT_KEY)
    with dask.client():  # with a cluster, the offline store partitions the join by customer over its workers
        frame, report = training.build_training_set(store, labels)
    objects.write_parquet(catalog.TRAINING_SET_KEY, frame)
    # written after the training set: a failure in between only costs a rebuild next time
    objects.put_bytes(TRAINING_INPUTS_KEY, json.dumps({"inputs": inputs}).encode())
    join = {"join_engine": dask.describe()}
    if report is not None:
        join["join_seconds"] = round(report.seconds, 3)
        if report.tasks:
            join["join_tasks"] = len(report.tasks)
            join["join_workers"] = sorted({t["worker"] for t in report.tasks if t["worker"]})
    return _training_set_result(frame, inputs, rebuilt=True, extra=join)


def _training_set_result(
    frame: pl.DataFrame, inputs: str, rebuilt: bool, extra: dict | None = None
) -> dg.MaterializeResult:
    snaps = frame[catalog.EVENT_TS].unique().sort()
    return dg.MaterializeResult(
        metadata={
            **(extra or {}),
            "rebuilt": rebuilt,
            "inputs_fingerprint": inputs,
            "dagster/row_count": frame.height,
            "snapshots": [f"{s:%Y-%m-%d}" for s in snaps],
            "churn_rate": float(frame["churned"].mean() or 0),
            "rows_missing_features": int(
                frame.select(catalog.feature_names()).null_count().sum_horizontal()[0]
            ),
        }
    )


QUALITY_GATE = "churn_model_quality"
QUALITY_GATE_KEY = dg.AssetCheckKey(dg.AssetKey("churn_model"), QUALITY_GATE)


@dg.asset(
    group_name=MODEL,
    deps=["training_set"],
    kinds={"lightgbm"},
    automation_condition=FOLLOW_UPSTREAM,
    retry_policy=RETRY,
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            QUALITY_GATE,
            asset="churn_model",
            blocking=True,
            description="The deployment gate, judged on every run: a new version's holdout AUC must be at "
            "least HYBRID_AUC_FLOOR, and not lower than the production model's AUC on the same holdout minus "
            "HYBRID_AUC_TOLERANCE (production is rescored on the current training set). A failure blocks "
            "churn_model_deployment: the new version stays in the registry for inspection and the endpoint "
            "keeps serving the current production model. A run that trains no new version passes it "
            "explicitly with 'no new version; production unchanged', naming the version that stays.",
        )
    ],
    description="LightGBM churn model trained on the earlier snapshots and evaluated on the last ones (AUC, "
    "log loss, calibration, feature importance), registered as a new version. Retraining policy: a new "
    "version only when the training window has a labelled snapshot the latest version did not see. Shows a "
    "ROC curve, a reliability diagram, feature importance and a model card, also stored next to the model in "
    "the registry. A failure usually means too few labelled snapshots for the time-based holdout (the message "
    "says to generate more days).",
)
def churn_model(
    context: dg.AssetExecutionContext,
    object_store: ObjectStoreResource,
    model_registry: ModelRegistryResource,
    quality_policy: QualityPolicy,
    dask: DaskResource,
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
            yield _gate_result(gate.nothing_to_judge(registry.production(), versions[-1]))
            return
    with dask.client() as client:  # with a cluster, LightGBM trains data-parallel across its workers
        if client is None:
            booster, trained_on = training.train(split.train, features), "in-process"
        else:
            booster = training.train_on_cluster(client, split.train, features)
            trained_on = f"{dask.describe()} ({len(worker_addresses(client))} workers)"
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
        "trained_on": trained_on,
    }
    from hybrid_assets.cloud import report

    baseline, files = split.holdout["days_since_last_txn"].to_numpy(), {}

    def version_report(registered: dict) -> dict[str, bytes]:  # written before the version becomes visible
        files.update(report.report_files(registered, labels, proba, baseline))
        return files

    version, is_new = registry.register(booster.model_to_string(), meta, artifacts=version_report)
    card_meta = {**registry.metadata(version), **meta}  # this evaluation + version, checksum, registered_at
    if not files:  # an identical model reused an existing version: it keeps its report, unless it has none
        files = report.report_files(card_meta, labels, proba, baseline)
        if registry.artifact(version, report.CARD_FILE) is None:
            for name, data in files.items():
                registry.put_artifact(version, name, data)
    top = list(meta["feature_importance"].items())[:8]
    production = registry.production()
    verdict = gate.judge(
        version,
        metrics["auc"],
        production,
        gate.production_auc(registry, production, version, split.holdout),
        quality_policy.auc_floor,
        quality_policy.auc_tolerance,
    )
    yield dg.MaterializeResult(
        check_results=[_gate_result(verdict)],
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
            "roc_curve": dg.MetadataValue.md(report.image_markdown(files[report.ROC_FILE], "ROC curve")),
            "calibration_plot": dg.MetadataValue.md(
                report.image_markdown(files[report.CALIBRATION_FILE], "reliability diagram")
            ),
            "feature_importance_plot": dg.MetadataValue.md(
                report.image_markdown(files[report.IMPORTANCE_FILE], "feature importance")
            ),
            "model_card": dg.MetadataValue.md(report.model_card(card_meta)),
            "model_card_uri": dg.MetadataValue.path(registry.artifact_uri(version, report.CARD_FILE)),
        },
    )


def _gate_result(verdict: gate.Verdict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=QUALITY_GATE,
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=verdict.description,
        metadata=verdict.metadata,
    )


def approved_model_version(instance: dg.DagsterInstance) -> str:
    """The version the latest verdict of the quality gate lets production serve. The deployment follows the
    gate's verdict, never simply the newest model: a candidate the gate rejected is never promoted later."""
    record = instance.get_latest_asset_check_evaluation_record(QUALITY_GATE_KEY)
    evaluation = record.event.dagster_event.event_specific_data if record and record.event else None
    if evaluation is None or not hasattr(evaluation, "passed"):
        raise dg.Failure(description="the quality gate has not judged a model yet: materialize churn_model")
    if not evaluation.passed:
        raise dg.Failure(
            description=f"the quality gate's latest verdict is a failure: {evaluation.description}",
            allow_retries=False,
        )
    return evaluation.metadata["version"].value


@dg.asset(
    group_name=DEPLOYMENT,
    deps=["churn_model"],
    kinds={"fastapi"},
    automation_condition=FOLLOW_UPSTREAM,
    description="The production model pointer (models/churn_model/production.json in the registry) that the "
    "endpoint follows. Runs only when churn_model's quality gate passed: AUC above the floor and no worse than "
    "the current production model. Shows the served version and its model card. A failure means churn_model was "
    "never materialized or the registry was unreachable; the endpoint keeps serving the previous model.",
)
def churn_model_deployment(
    context: dg.AssetExecutionContext, model_registry: ModelRegistryResource
) -> dg.MaterializeResult:
    registry = model_registry.client()
    version = approved_model_version(context.instance)
    current = registry.production()
    if version == "none" or (current and current["version"] == version):
        pointer, changed = current, False
    else:
        pointer, changed = (
            registry.promote(version, reason=f"passed the quality gate in run {context.run.run_id}"),
            True,
        )
    from hybrid_assets.cloud import report

    served = pointer["version"]
    card = registry.artifact(served, report.CARD_FILE)
    return dg.MaterializeResult(
        metadata={
            "served_version": served,
            "promoted": changed,
            "previous_version": (current or {}).get("version", "none"),
            "auc": pointer["metrics"].get("auc"),
            "promoted_at": pointer["promoted_at"],
            "model_card": dg.MetadataValue.md(
                report.card_summary(card.decode())
                + f"\nFull card, with the ROC, calibration and importance plots: "
                f"`{registry.artifact_uri(served, report.CARD_FILE)}`"
                if card
                else f"{served} has no model card (registered before the registry stored reports)"
            ),
            "model_card_uri": dg.MetadataValue.path(registry.artifact_uri(served, report.CARD_FILE)),
        }
    )


ASSETS = [
    marketing_events,
    feature_registry,
    marketing_engagement,
    online_features,
    offline_features,
    training_set,
    churn_model,
    churn_model_deployment,
]
