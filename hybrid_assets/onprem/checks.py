"""Blocking Great Expectations gates on every on-prem asset. A failed gate stops everything downstream in
the run; what it judged stays in place for inspection."""

import json
from datetime import timedelta

import dagster as dg
import polars as pl

from core import catalog
from core.contracts import CONTRACTS, PII_COLUMNS, TableContract
from core.days import as_of, day_key, days_from_tags
from core.redaction import redact_row
from expectations import features as feature_suites
from expectations.raw import suite as raw_suite
from expectations.runner import validate
from hybrid_assets.onprem.assets import (
    EXPORT_FEATURES_KEY,
    EXPORT_LABELS_KEY,
    before_first_day_message,
    rows_before_first_day,
)
from hybrid_assets.onprem.residency import scrubbed
from hybrid_assets.quality import QualityPolicy, gx_check_result
from resources.object_store import ObjectStoreResource
from resources.warehouse import NO_ARRIVAL_DAY, PLATFORM_SCHEMA, QUARANTINE_TABLE, WarehouseResource

SAMPLE_ROWS = 5


def _raw_check(contract: TableContract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=contract.table,
        name=f"{contract.table}_contract",
        blocking=True,
        description=f"Accepted rows in platform.{contract.table} (the warehouse) pass the GX suite "
        f"`{contract.table}_accepted_rows` (exact columns, non-null unique key, allowed values), and the share "
        "of the run's rows (for transactions: of the days it loaded) sent to platform.quarantine stays under HYBRID_MAX_INVALID_SHARE. Some quarantined rows "
        "under the limit give a WARN that does not block; above the limit, or a failed expectation, is an ERROR "
        "that stops everything downstream in the run (it keeps its last good output). `hybrid quarantine` "
        "shows the rows (on-prem; the samples here show keys, reasons and non-PII columns only).",
    )
    @scrubbed
    def _check(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, quality_policy: QualityPolicy
    ) -> dg.AssetCheckResult:
        wh = warehouse.client()
        accepted = wh.query(f"select * from {PLATFORM_SCHEMA}.{contract.table}")
        # the whole table: keys stay unique across partitions
        result = validate(accepted, raw_suite(contract), redact=contract.pii)
        days = _days(context, contract.partition_column is not None)
        where, params = "source_table = ?", [contract.table]
        if days:  # the quarantine share of the days this run loaded
            column = contract.partition_column
            accepted = accepted.filter(
                pl.col(column).is_between(as_of(days[0]), as_of(days[-1]) + timedelta(days=1), closed="left")
            )
            where += " and (partition_key between ? and ? or partition_key = ?)"
            params += [day_key(days[0]), day_key(days[-1]), NO_ARRIVAL_DAY]
        bad = wh.query(
            f"select reason, row_key, row_json from {QUARANTINE_TABLE} where {where} order by row_key", params
        )
        total = accepted.height + bad.height
        share = bad.height / total if total else 0.0
        by_reason = dict(bad.group_by("reason").len().sort("len", descending=True).iter_rows())
        limit = quality_policy.max_invalid_share
        errors, warnings = [], []
        message = (
            f"{bad.height} of {total} {contract.table} rows quarantined ({share:.2%}; limit "
            f"{limit:.2%}): {by_reason}"
        )
        if bad.height:
            (errors if share > limit else warnings).append(message)
        before_first_day = rows_before_first_day(wh, contract) if contract.partition_column else 0
        if before_first_day:
            warnings.append(before_first_day_message(contract, before_first_day))
        samples = [  # keys, reasons and the non-PII columns: the full rows stay in platform.quarantine
            {"row_key": key, "reason": reason, "row": redact_row(json.loads(row), contract.pii)}
            for reason, key, row in bad.group_by("reason", maintain_order=True)
            .head(2)
            .head(SAMPLE_ROWS)
            .select("reason", "row_key", "row_json")
            .iter_rows()
        ]
        return gx_check_result(
            result,
            errors=errors,
            warnings=warnings,
            metadata={
                "rows_quarantined": bad.height,
                "quarantine_share": float(share),
                "max_invalid_share": float(limit),
                "quarantined_by_reason": by_reason,
                "sample_quarantined_rows": dg.MetadataValue.json(samples),
            },
        )

    return _check


def _days(context: dg.AssetCheckExecutionContext, daily: bool):
    """The partition days the run wrote (a daily asset's check judges those), or None: judge everything."""
    return days_from_tags(context.run.tags) if daily else None


def _table_check(table: str, suite_fn, description: str, daily: bool = False) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=table, name=f"{table}_contract", blocking=True, description=description)
    @scrubbed
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        sql, params = f"select * from {PLATFORM_SCHEMA}.{table}", None
        days = _days(context, daily)
        if days:
            sql += f" where {catalog.EVENT_TS} between ? and ?"
            params = [as_of(days[0]), as_of(days[-1])]
        return gx_check_result(
            validate(warehouse.client().query(sql, params), suite_fn(), redact=PII_COLUMNS)
        )

    return _check


def _export_check(asset: str, key: str, suite_fn, description: str, daily: bool = False):
    @dg.asset_check(asset=asset, name=f"{asset}_contract", blocking=True, description=description)
    @scrubbed
    def _check(
        context: dg.AssetCheckExecutionContext, object_store: ObjectStoreResource
    ) -> dg.AssetCheckResult:
        store = object_store.client()
        days = _days(context, daily)
        if days:  # validate what actually crossed: the objects of the run's days
            keys = set(store.list(key))
            wanted = [catalog.day_object(key, d) for d in days if catalog.day_object(key, d) in keys]
            frame = pl.concat([store.read_parquet(k) for k in wanted]) if wanted else store.read_parquet(key)
        else:
            frame = store.read_parquet(key)
        pii = [c for c in frame.columns if c in PII_COLUMNS]
        return gx_check_result(
            validate(frame, suite_fn(), redact=PII_COLUMNS),
            errors=[f"PII column(s) {', '.join(pii)} in the export"] if pii else [],
        )

    return _check


CHECKS = [
    *[_raw_check(c) for c in CONTRACTS.values()],
    _table_check(
        "customer_features",
        lambda: feature_suites.feature_suite(catalog.ACTIVITY_VIEW, "customer_features"),
        "GX suite derived from the catalog, on platform.customer_features in the warehouse: exactly the "
        "catalog's columns, one row per customer and snapshot, every feature non-null and inside its declared "
        "range. Judges the days the run wrote. A failure (usually a feature computation or a declared range that "
        "is wrong) blocks the export: nothing new crosses to the cloud.",
        daily=True,
    ),
    _table_check(
        "churn_labels",
        feature_suites.labels_suite,
        "GX suite on platform.churn_labels in the warehouse: exactly customer_id, event_timestamp and churned, "
        "at least one row, churned is 0 or 1, one label per customer and snapshot. A failure blocks the label "
        "export: the cloud keeps training on the previous labels.",
    ),
    _export_check(
        "customer_feature_export",
        EXPORT_FEATURES_KEY,
        lambda: feature_suites.feature_suite(catalog.ACTIVITY_VIEW, "customer_feature_export"),
        "Reads the run's exported daily objects back from the object store (what actually crossed): exactly the "
        "catalog's columns, so no PII column can cross, non-null in-range features, one row per customer and "
        "snapshot. A failure means a wrong export or a PII column; the cloud assets wait for this check to pass.",
        daily=True,
    ),
    _export_check(
        "churn_label_export",
        EXPORT_LABELS_KEY,
        feature_suites.labels_suite,
        "Reads the exported labels back from the object store: exactly customer_id, event_timestamp and churned "
        "(0 or 1), one per customer and snapshot, no PII column. A failure stops the cloud from training on "
        "these labels (its assets wait for this check to pass).",
    ),
]
