"""The model beats naive baselines clearly and comes close to the generator's true probabilities."""

from datetime import date

import polars as pl

from core import catalog
from hybrid_assets.cloud import training
from hybrid_cli.generator import true_churn_probability


def test_model_beats_naive_baselines(platform):
    metrics = platform.registry().metadata(platform.registry().production()["version"])["metrics"]
    assert metrics["auc"] > 0.75, "a constant predictor scores 0.5"
    assert metrics["auc"] >= metrics["recency_baseline_auc"] + 0.02
    # calibrated: the predicted churn rate matches the observed one
    assert metrics["expected_calibration_error"] < 0.03


def test_model_auc_is_close_to_the_true_probabilities(platform):
    import lightgbm as lgb

    registry = platform.registry()
    version = registry.production()["version"]
    meta = registry.metadata(version)
    booster = lgb.Booster(model_str=registry.model_text(version))
    split = training.time_split(platform.object_store().read_parquet(catalog.TRAINING_SET_KEY))
    holdout = split.holdout.with_columns(
        model=pl.Series(booster.predict(training.matrix(split.holdout, meta["features"])))
    )
    truth = pl.concat(
        [
            true_churn_probability(platform.home, platform.warehouse(), date.fromisoformat(s)).with_columns(
                pl.lit(date.fromisoformat(s)).alias("snapshot")
            )
            for s in split.holdout_snapshots
        ]
    )
    joined = holdout.with_columns(pl.col(catalog.EVENT_TS).dt.date().alias("snapshot")).join(
        truth, on=["customer_id", "snapshot"], how="inner"
    )
    assert joined.height >= 0.99 * holdout.height
    labels = joined["churned"].to_numpy()
    model_auc = training.auc(labels, joined["model"].to_numpy())
    true_auc = training.auc(labels, joined["true_churn_probability"].to_numpy())
    assert abs(model_auc - true_auc) <= 0.05, (model_auc, true_auc)
