"""Cloud-side triggers: new marketing files in the object store, the automation sensor that makes the
cloud assets follow the on-prem export, and retraining (weekly schedule; drift or live-quality sensor)."""

import dagster as dg

from hybrid_assets.cloud import drift
from hybrid_assets.cloud.assets import MARKETING_PREFIX
from resources.model_registry import ModelRegistryResource
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


# -- retraining: a weekly schedule, and a sensor for drift or falling live quality --------------------------
RETRAIN_SELECTION = dg.AssetSelection.assets("training_set", "churn_model", "churn_model_deployment")


def evaluate_retraining(
    store, registry, psi_threshold: float | None = None, auc_floor: float | None = None
) -> tuple[drift.RetrainDecision, str]:
    """The retraining decision for the current production model, and a signature of the data it saw
    (so the sensor asks once per new state, not on every tick)."""
    import lightgbm as lgb
    import polars as pl

    from core import catalog
    from hybrid_assets.cloud import training

    pointer = registry.production()
    if pointer is None:
        return drift.RetrainDecision(False, ["no production model yet"]), ""
    version = pointer["version"]
    meta = registry.metadata(version)
    frame = store.read_parquet(catalog.TRAINING_SET_KEY)
    train_snaps = set(meta["training_window"]["train_snapshots"])
    reference = frame.filter(pl.col(catalog.EVENT_TS).dt.strftime("%Y-%m-%d").is_in(list(train_snaps)))
    from hybrid_assets.cloud.assets import newest_feature_rows

    served = newest_feature_rows(store)
    newest = served[catalog.EVENT_TS].max()
    # compare like with like: the model is trained and used on the active population (a purchase in the
    # ACTIVE_DAYS before the snapshot), not on every customer of the export
    current = served.filter(pl.col("days_since_last_txn") <= catalog.ACTIVE_DAYS)
    key_features = list(meta["feature_importance"])[: drift.KEY_FEATURES]
    # live quality: the newest labelled snapshot, which the model was not trained on
    last_labelled = frame[catalog.EVENT_TS].max()
    live = frame.filter(pl.col(catalog.EVENT_TS) == last_labelled)
    live_auc = None
    if live.height and live["churned"].n_unique() == 2 and f"{last_labelled:%Y-%m-%d}" not in train_snaps:
        booster = lgb.Booster(model_str=registry.model_text(version))
        live_auc = training.auc(
            live["churned"].to_numpy(), booster.predict(training.matrix(live, meta["features"]))
        )
    decision = drift.decide(
        reference,
        current,
        key_features,
        live_auc,
        psi_threshold=psi_threshold or drift.PSI_THRESHOLD,
        auc_floor=auc_floor or drift.LIVE_AUC_FLOOR,
    )
    return decision, f"{version}@{newest:%Y-%m-%d}@{last_labelled:%Y-%m-%d}"


def build_retraining(job) -> tuple[dg.ScheduleDefinition, dg.SensorDefinition]:
    schedule = dg.ScheduleDefinition(
        name="weekly_retraining",
        job=job,
        cron_schedule="0 4 * * 1",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every Monday 04:00 UTC: rebuild the training set from the newest labels, retrain, and "
        "deploy if the quality gate passes. A no-op when no new labelled snapshot arrived (retraining policy).",
    )

    @dg.sensor(
        name="retrain_on_drift",
        job=job,
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
            decision, signature = evaluate_retraining(object_store.client(), model_registry.client())
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

    return schedule, retrain_on_drift
