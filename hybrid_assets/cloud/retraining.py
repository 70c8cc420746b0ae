"""The retraining policy and decision, without Dagster: whether a new model version is due (a labelled
snapshot the latest version did not see), and whether the production model drifted or lost quality."""

import polars as pl

from core import catalog
from hybrid_assets.cloud import drift, training
from hybrid_assets.cloud.online_load import newest_feature_rows


def latest_covers(
    latest: dict,
    split: training.Split,
    features: list[str],
    definition: catalog.LabelDefinition | None = None,
) -> bool:
    """Does the latest registered version already cover this training window (same holdout snapshots,
    features, parameters and label definition)? Then no new version is trained."""
    window = latest.get("training_window", {})
    definition = definition or catalog.LabelDefinition()
    return (
        window.get("holdout_snapshots") == split.holdout_snapshots
        and latest.get("features") == features
        and latest.get("params") == training.PARAMS
        and catalog.LabelDefinition.from_metadata(latest.get("label_definition")) == definition
    )


def evaluate_retraining(
    store, registry, psi_threshold: float | None = None, auc_floor: float | None = None
) -> tuple[drift.RetrainDecision, str]:
    """The retraining decision for the current production model, and a signature of the data it saw
    (so the sensor asks once per new state, not on every tick)."""
    import lightgbm as lgb  # only when the sensor evaluates: not while the definitions load

    pointer = registry.production()
    if pointer is None:
        return drift.RetrainDecision(False, ["no production model yet"]), ""
    version = pointer["version"]
    meta = registry.metadata(version)
    frame = store.read_parquet(catalog.TRAINING_SET_KEY)
    train_snaps = set(meta["training_window"]["train_snapshots"])
    reference = frame.filter(pl.col(catalog.EVENT_TS).dt.strftime("%Y-%m-%d").is_in(list(train_snaps)))
    served = newest_feature_rows(store)
    newest = served[catalog.EVENT_TS].max()
    # compare like with like: the model is trained and used on the active population (a purchase in the
    # active days before the snapshot, as its labels defined it), not on every customer of the export
    active_days = catalog.LabelDefinition.from_metadata(meta.get("label_definition")).active_days
    current = served.filter(pl.col("days_since_last_txn") <= active_days)
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
