"""Group ``model``: the LightGBM churn model with its blocking quality gate (judged on every run), and
retraining: the ``retrain`` job, a weekly schedule and a sensor for drift or falling live quality."""

from datetime import datetime

import dagster as dg

from core import catalog
from hybrid_assets.cloud import drift, gate, report, retraining, training
from hybrid_assets.defaults import FOLLOW_UPSTREAM, RETRY, WITH_ITS_ASSET
from hybrid_assets.quality import LabelPolicy, QualityPolicy
from resources.dask_cluster import DaskResource, worker_addresses
from resources.model_registry import MODEL_NAME, ModelRegistryResource
from resources.object_store import ObjectStoreResource

GROUP = "model"


QUALITY_GATE = "churn_model_quality"
QUALITY_GATE_KEY = dg.AssetCheckKey(dg.AssetKey("churn_model"), QUALITY_GATE)


@dg.asset(
    group_name=GROUP,
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
            automation_condition=WITH_ITS_ASSET,
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
    label_policy: LabelPolicy,
    dask: DaskResource,
):
    frame = object_store.client().read_parquet(catalog.TRAINING_SET_KEY)
    registry = model_registry.client()
    features = catalog.feature_names()
    definition = label_policy.definition()
    split = training.time_split(frame, horizon_days=definition.horizon_days)
    versions = registry.versions()
    if versions:
        if retraining.latest_covers(registry.metadata(versions[-1]), split, features, definition):
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
        "label_definition": definition.as_metadata(),
        "trained_at": datetime.now().isoformat(),
        "trained_on": trained_on,
    }
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


# -- retraining: a weekly schedule, and a sensor for drift or falling live quality --------------------------
RETRAIN_SELECTION = dg.AssetSelection.assets("training_set", "churn_model", "churn_model_deployment")
retrain = dg.define_asset_job(
    "retrain",
    selection=RETRAIN_SELECTION,
    description="Rebuild the training set from the newest labels, retrain the churn model, gate and deploy.",
)
weekly_retraining = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=retrain,
    cron_schedule="0 4 * * 1",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every Monday 04:00 UTC: rebuild the training set from the newest labels, retrain, and "
    "deploy if the quality gate passes. A no-op when no new labelled snapshot arrived (retraining policy).",
)


@dg.sensor(
    name="retrain_on_drift",
    job=retrain,
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Hourly: compares the served features with what the production model was trained on "
    f"(population stability index of its {drift.KEY_FEATURES} most important features, threshold "
    f"{drift.PSI_THRESHOLD}) and checks its AUC on the newest labelled snapshot (floor "
    f"{drift.LIVE_AUC_FLOOR}); requests a retraining run when either crosses its threshold.",
)
def retrain_on_drift(
    context: dg.SensorEvaluationContext,
    object_store: ObjectStoreResource,
    model_registry: ModelRegistryResource,
):
    try:
        decision, signature = retraining.evaluate_retraining(object_store.client(), model_registry.client())
    except FileNotFoundError as exc:
        return dg.SkipReason(f"nothing to compare yet: {exc}")
    context.log.info(decision.summary())
    if not decision.retrain:
        return dg.SkipReason(decision.summary())
    if signature == context.cursor:
        return dg.SkipReason(f"retraining already requested for this data ({signature})")
    context.update_cursor(signature)
    return dg.RunRequest(
        run_key=f"drift-{signature}",
        tags={"hybrid/retrain_reason": "; ".join(decision.reasons)[:250]},
    )
