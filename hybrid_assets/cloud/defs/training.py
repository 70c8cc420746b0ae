"""Group ``training``: the point-in-time-correct training set from Feast, and its GX gate."""

import json

import dagster as dg
import polars as pl

from core import catalog
from expectations import features as suites
from hybrid_assets.cloud import training
from hybrid_assets.cloud.fingerprints import training_inputs
from hybrid_assets.defaults import FOLLOW_UPSTREAM, RETRY
from hybrid_assets.quality import parquet_check
from resources.dask_cluster import DaskResource
from resources.feature_store import FeatureStoreResource
from resources.object_store import ObjectStoreResource

GROUP = "training"
LABEL_EXPORT = "churn_label_export"  # the on-prem location's label export
TRAINING_INPUTS_KEY = (
    "training/churn_training_set.inputs.json"  # the fingerprint the training set was built from
)


@dg.asset(
    group_name=GROUP,
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
    inputs = training_inputs(objects)
    try:
        built_from = json.loads(objects.get_bytes(TRAINING_INPUTS_KEY)).get("inputs")
    except FileNotFoundError:
        built_from = None
    if built_from == inputs and objects.exists(catalog.TRAINING_SET_KEY):
        # nothing new since the last build: the same labels and features give the same rows (minutes saved)
        context.log.info(f"training set inputs unchanged ({inputs}): the Feast join is skipped")
        return _result(objects.read_parquet(catalog.TRAINING_SET_KEY), inputs, rebuilt=False)
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
    return _result(frame, inputs, rebuilt=True, extra=join)


def _result(
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


training_set_contract = parquet_check(
    "training_set",
    catalog.TRAINING_SET_KEY,
    suites.training_set_suite,
    "GX suite on the training set Feast built (training/churn_training_set.parquet in the object store): "
    "at least 100 rows, one per customer and snapshot, churned is 0 or 1 with a churn rate between 1% and "
    "60%, and every feature non-null and in range (a null means Feast found no feature row for a label). A "
    "failure blocks churn_model: no new version is trained and production stays as it is.",
)
