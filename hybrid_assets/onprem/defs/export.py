"""Group ``export``: what crosses to the cloud, audited before it is published (daily feature objects and the
labels), and the checks that read back what actually crossed."""

import dagster as dg
import polars as pl

from core import catalog
from core.days import as_of, day_key
from expectations import features as feature_suites
from expectations.runner import validate
from hybrid_assets.defaults import CROSSES_TO_CLOUD, RETRY
from hybrid_assets.onprem.residency import scrubbed
from hybrid_assets.partitions import DAILY, SINGLE_RUN, check_days, run_days
from hybrid_assets.quality import gx_check_result
from resources.object_store import ObjectStoreResource
from resources.warehouse import PLATFORM_SCHEMA, WarehouseResource

GROUP = "export"


def _audit(frame: pl.DataFrame, suite_fn, pii: frozenset[str]) -> None:
    """Audit before publishing: a bad export never becomes visible to Feast or the cloud location."""
    audit = validate(frame, suite_fn(), redact=pii)
    if not audit.success:
        raise dg.Failure(
            description=f"not exported, the previous export stays: {audit.summary()}", allow_retries=False
        )


def _publish_days(store, frame: pl.DataFrame, prefix: str, days) -> dict:
    """One atomic object per day: a reader sees a day's old rows or its new ones."""
    written, unchanged, empty = [], [], []
    for day in days:
        rows = frame.filter(pl.col(catalog.EVENT_TS) == as_of(day))
        if not rows.height:
            empty.append(day_key(day))  # nobody had signed up yet: no object, Feast sees no rows
            continue
        if store.write_parquet_if_changed(catalog.day_object(prefix, day), rows):
            written.append(day_key(day))
        else:
            unchanged.append(day_key(day))
    return {
        "days_written": len(written),
        "days_unchanged": len(unchanged),  # a rerun with the same rows rewrites nothing
        "days_without_rows": empty,
        "uri": store.uri(catalog.day_object(prefix, days[-1])),
    }


def _export(name: str, table: str, key: str, suite_fn, description: str, daily: bool = False):
    """An export asset: the warehouse table (for a daily export: the run's days of it) audited, then written to
    the object store as one atomic object (a daily export: one per day, ``key`` is the folder)."""

    @dg.asset(
        name=name,
        group_name=GROUP,
        deps=[table],
        kinds={"parquet", "s3"},
        tags=CROSSES_TO_CLOUD,
        retry_policy=RETRY,
        partitions_def=DAILY if daily else None,
        backfill_policy=SINGLE_RUN if daily else None,
        description=description,
        metadata={"object_key": f"{key}<YYYY-MM-DD>.parquet" if daily else key},
    )
    @scrubbed
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, object_store: ObjectStoreResource
    ) -> dg.MaterializeResult:
        sql, params = f"select * from {PLATFORM_SCHEMA}.{table}", None
        if daily:
            days = run_days(context)
            sql += (
                f" where {catalog.EVENT_TS} between ? and ? order by {catalog.EVENT_TS}, {catalog.ENTITY_KEY}"
            )
            params = [as_of(days[0]), as_of(days[-1])]
        frame = warehouse.client().query(sql, params)
        _audit(frame, suite_fn, warehouse.sources().pii_columns)
        store = object_store.client()
        if daily:
            published = _publish_days(store, frame, key, days)
        else:  # one atomic object: readers see the old export or the new one
            store.write_parquet(key, frame)
            published = {"uri": store.uri(key)}
        return dg.MaterializeResult(
            metadata={"dagster/row_count": frame.height, **published, "columns": frame.columns}
        )

    return _asset


def _export_check(asset: str, key: str, suite_fn, description: str, daily: bool = False):
    @dg.asset_check(asset=asset, name=f"{asset}_contract", blocking=True, description=description)
    @scrubbed
    def _check(
        context: dg.AssetCheckExecutionContext,
        object_store: ObjectStoreResource,
        warehouse: WarehouseResource,
    ) -> dg.AssetCheckResult:
        store = object_store.client()
        pii_columns = warehouse.sources().pii_columns  # the mapping's: the contracts' and any it adds
        days = check_days(context, daily)
        if days:  # validate what actually crossed: the objects of the run's days
            keys = set(store.list(key))
            wanted = [catalog.day_object(key, d) for d in days if catalog.day_object(key, d) in keys]
            frame = pl.concat([store.read_parquet(k) for k in wanted]) if wanted else store.read_parquet(key)
        else:
            frame = store.read_parquet(key)
        pii = [c for c in frame.columns if c in pii_columns]
        return gx_check_result(
            validate(frame, suite_fn(), redact=pii_columns),
            errors=[f"PII column(s) {', '.join(pii)} in the export"] if pii else [],
        )

    return _check


def _activity_suite():
    return feature_suites.feature_suite(catalog.ACTIVITY_VIEW, "customer_feature_export")


customer_feature_export = _export(
    "customer_feature_export",
    "customer_features",
    catalog.ACTIVITY_EXPORT_KEY,
    _activity_suite,
    "The curated features that cross to the cloud, one Parquet object per day: partition D of "
    "platform.customer_features written to exports/customer_activity/D.parquet (customer_id, event_timestamp and "
    "the catalog's on-prem features, no PII column; its check fails on any column outside the catalog). The "
    "folder is Feast's source for customer_activity. Audited before it is published: a failure means the audit "
    "or the object store failed, and the cloud keeps the previous objects.",
    daily=True,
)
churn_label_export = _export(
    "churn_label_export",
    "churn_labels",
    catalog.LABELS_EXPORT_KEY,
    feature_suites.labels_suite,
    "Churn labels that cross to the cloud for training: platform.churn_labels written as Parquet to the object "
    "store (customer_id, event_timestamp, churned; no PII). Audited before it is published: a failure means the "
    "audit or the object store failed, and the cloud keeps training on the previous labels.",
)
customer_feature_export_contract = _export_check(
    "customer_feature_export",
    catalog.ACTIVITY_EXPORT_KEY,
    _activity_suite,
    "Reads the run's exported daily objects back from the object store (what actually crossed): exactly the "
    "catalog's columns, so no PII column can cross, non-null in-range features, one row per customer and "
    "snapshot. A failure means a wrong export or a PII column; the cloud assets wait for this check to pass.",
    daily=True,
)
churn_label_export_contract = _export_check(
    "churn_label_export",
    catalog.LABELS_EXPORT_KEY,
    feature_suites.labels_suite,
    "Reads the exported labels back from the object store: exactly customer_id, event_timestamp and churned "
    "(0 or 1), one per customer and snapshot, no PII column. A failure stops the cloud from training on "
    "these labels (its assets wait for this check to pass).",
)
