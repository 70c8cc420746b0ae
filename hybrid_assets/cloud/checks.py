"""Blocking gates in the cloud: GX suites on every dataset and online/offline consistency. The model's quality
gate is a check of ``churn_model`` itself (hybrid_assets/cloud/gate.py), so that every run judges it, even a
run that trains no new version."""

import dagster as dg
import numpy as np
import polars as pl

from core import catalog
from expectations import features as suites
from expectations.runner import validate
from hybrid_assets.cloud.assets import MARKETING_CURATED_KEY, newest_feature_rows
from hybrid_assets.quality import gx_check_result
from resources.feature_store import FeatureStoreResource
from resources.object_store import ObjectStoreResource

CONSISTENCY_SAMPLE = 50


def _parquet_check(asset: str, key: str, suite_fn, description: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=f"{asset}_contract", blocking=True, description=description)
    def _check(object_store: ObjectStoreResource) -> dg.AssetCheckResult:
        return gx_check_result(validate(object_store.client().read_parquet(key), suite_fn()))

    return _check


def latest_offline_features(object_store: ObjectStoreResource) -> pl.DataFrame:
    """Each customer's newest row of both feature views: what the online store must hold."""
    return newest_feature_rows(object_store.client())


@dg.asset_check(
    asset="online_features",
    name="online_matches_offline",
    blocking=True,
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


CHECKS = [
    _parquet_check(
        "marketing_events",
        MARKETING_CURATED_KEY,
        suites.marketing_events_suite,
        "GX suite on the consolidated marketing events (curated/marketing_events.parquet in the object store): "
        "the expected columns, at least one row, customer_id and event_ts present, event_type only sent, open "
        "or click. A failure means the marketing system dropped a malformed file; it blocks "
        "marketing_engagement and everything after it, which keep their last good output.",
    ),
    _parquet_check(
        "marketing_engagement",
        catalog.ENGAGEMENT_KEY,
        lambda: suites.feature_suite(catalog.ENGAGEMENT_VIEW, "marketing_engagement"),
        "GX suite derived from the catalog, on every daily object under offline/marketing_engagement/: "
        "exactly the catalog's engagement columns, one row per customer and snapshot, non-null and inside their "
        "declared ranges. A failure blocks the online store load and the training set in the run; they keep "
        "their last good output.",
    ),
    online_matches_offline,
    _parquet_check(
        "training_set",
        catalog.TRAINING_SET_KEY,
        suites.training_set_suite,
        "GX suite on the training set Feast built (training/churn_training_set.parquet in the object store): "
        "at least 100 rows, one per customer and snapshot, churned is 0 or 1 with a churn rate between 1% and "
        "60%, and every feature non-null and in range (a null means Feast found no feature row for a label). A "
        "failure blocks churn_model: no new version is trained and production stays as it is.",
    ),
]
