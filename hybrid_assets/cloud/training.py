"""LightGBM training and evaluation on a time-based holdout. Pure functions: the assets do the I/O."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl

from core import catalog

HOLDOUT_SNAPSHOTS = 2
PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "num_threads": 2,
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
NUM_ROUNDS = 300


class NotEnoughHistory(ValueError):
    pass


@dataclass
class Split:
    train: pl.DataFrame
    holdout: pl.DataFrame
    train_snapshots: list[str]
    holdout_snapshots: list[str]


def time_split(
    frame: pl.DataFrame,
    holdout_snapshots: int = HOLDOUT_SNAPSHOTS,
    horizon_days: int = catalog.LABEL_HORIZON_DAYS,
) -> Split:
    """Hold out the last snapshots; train only on snapshots whose label horizon (``horizon_days``, as the
    labels were computed) ends before the holdout starts, so no training label looks at data the holdout's
    features could not see."""
    snaps = sorted(frame[catalog.EVENT_TS].unique().to_list())
    if len(snaps) <= holdout_snapshots:
        raise NotEnoughHistory(f"{len(snaps)} labelled snapshots; need more than {holdout_snapshots}")
    hold = snaps[-holdout_snapshots:]
    cutoff = hold[0] - timedelta(days=horizon_days)
    train_snaps = [s for s in snaps if s <= cutoff]
    if not train_snaps:
        raise NotEnoughHistory(
            f"no snapshot ends its {horizon_days}-day label horizon before the holdout "
            f"({hold[0]:%Y-%m-%d}); generate more days of history"
        )
    return Split(
        train=frame.filter(pl.col(catalog.EVENT_TS).is_in(train_snaps)),
        holdout=frame.filter(pl.col(catalog.EVENT_TS).is_in(hold)),
        train_snapshots=[f"{s:%Y-%m-%d}" for s in train_snaps],
        holdout_snapshots=[f"{s:%Y-%m-%d}" for s in hold],
    )


def build_training_set(store, labels: pl.DataFrame) -> tuple[pl.DataFrame, object | None]:
    """The labels joined point-in-time with the churn_prediction service's features by Feast
    (``get_historical_features``; on a Dask cluster when the caller has a client open), in the training
    set's column order, sorted; and the offline store's report of the join (None from another store)."""
    service = store.get_feature_service(catalog.FEATURE_SERVICE)
    entity_df = labels.to_pandas()
    entity_df[catalog.EVENT_TS] = entity_df[catalog.EVENT_TS].dt.tz_localize("UTC")
    job = store.get_historical_features(entity_df=entity_df, features=service)
    joined = job.to_df()
    frame = pl.from_pandas(joined).with_columns(
        pl.col(catalog.EVENT_TS).dt.replace_time_zone(None).cast(pl.Datetime("us"))
    )
    ordered = [catalog.ENTITY_KEY, catalog.EVENT_TS, "churned", *catalog.feature_names()]
    return frame.select(ordered).sort(catalog.EVENT_TS, catalog.ENTITY_KEY), getattr(job, "last_report", None)


def matrix(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    return frame.select(features).cast(pl.Float64).to_numpy()


def train(frame: pl.DataFrame, features: list[str]):
    import lightgbm as lgb

    data = lgb.Dataset(
        matrix(frame, features), label=frame["churned"].to_numpy(), feature_name=features, free_raw_data=True
    )
    return lgb.train(PARAMS, data, num_boost_round=NUM_ROUNDS)


def train_on_cluster(client, frame: pl.DataFrame, features: list[str]):
    """LightGBM's data-parallel training (``lightgbm.dask``) across the cluster's workers, one share of the rows
    on each; returns a plain Booster, as :func:`train` does, so it is registered and served the same way."""
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMClassifier

    info = client.scheduler_info()["workers"]
    workers = sorted(info)
    rows = frame.select([*features, "churned"]).with_columns(pl.col(features).cast(pl.Float64)).to_pandas()
    bounds = np.linspace(0, len(rows), len(workers) + 1).astype(int)
    parts = [
        client.scatter(rows.iloc[lo:hi].reset_index(drop=True), workers=[worker], direct=True)
        for worker, lo, hi in zip(workers, bounds[:-1], bounds[1:], strict=True)
        if hi > lo
    ]
    data = dd.from_delayed(parts, meta=rows.iloc[:0], verify_meta=False)
    # lightgbm.dask gives each machine its worker's threads; the objective is the classifier's
    params = {k: v for k, v in PARAMS.items() if k not in ("objective", "num_threads")}
    model = DaskLGBMClassifier(client=client, n_estimators=NUM_ROUNDS, **params)
    with warnings.catch_warnings():  # the sklearn wrapper's n_jobs default: the workers' threads are used
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(data[features], data["churned"])
    return model.to_local().booster_


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def evaluate(labels: np.ndarray, proba: np.ndarray, bins: int = 10) -> dict:
    from sklearn.metrics import brier_score_loss, log_loss

    edges = np.quantile(proba, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, bins - 1)
    calibration = []
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        predicted, observed = float(proba[mask].mean()), float(labels[mask].mean())
        calibration.append({"bin": b, "rows": int(mask.sum()), "predicted": predicted, "observed": observed})
        ece += mask.mean() * abs(predicted - observed)
    return {
        "auc": auc(labels, proba),
        "log_loss": float(log_loss(labels, proba, labels=[0, 1])),
        "brier": float(brier_score_loss(labels, proba)),
        "expected_calibration_error": float(ece),
        "base_rate": float(labels.mean()),
        "rows": int(len(labels)),
        "calibration": calibration,
    }


def recency_baseline_auc(holdout: pl.DataFrame) -> float:
    """The naive rule "the longer since the last purchase, the likelier to churn"."""
    return auc(holdout["churned"].to_numpy(), holdout["days_since_last_txn"].to_numpy())


def importance(booster, features: list[str]) -> dict[str, float]:
    gains = booster.feature_importance(importance_type="gain")
    total = float(gains.sum()) or 1.0
    return dict(
        sorted(((f, float(g) / total) for f, g in zip(features, gains, strict=True)), key=lambda kv: -kv[1])
    )
