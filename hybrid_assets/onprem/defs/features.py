"""Group ``features``: the catalog's on-prem features (daily partitions) and the churn labels, computed in the
warehouse from accepted rows only, with their blocking GX gates."""

from datetime import timedelta

import dagster as dg
import polars as pl

from core import catalog
from core.days import as_of, day_key
from expectations import features as feature_suites
from expectations.runner import validate
from hybrid_assets.defaults import ONPREM, RETRY
from hybrid_assets.onprem import features as onprem_features
from hybrid_assets.onprem import labels
from hybrid_assets.onprem.residency import scrubbed
from hybrid_assets.partitions import DAILY, PREVIOUS_DAYS, SINGLE_RUN, check_days, run_days
from hybrid_assets.quality import LabelPolicy, gx_check_result
from resources.dask_cluster import DaskResource
from resources.warehouse import PLATFORM_SCHEMA, WarehouseResource, Window

GROUP = "features"


@dg.asset(
    group_name=GROUP,
    deps=["customers", dg.AssetDep("transactions", partition_mapping=PREVIOUS_DAYS), "support_tickets"],
    kinds={"polars", "duckdb"},
    tags=ONPREM,
    retry_policy=RETRY,
    partitions_def=DAILY,
    backfill_policy=SINGLE_RUN,
    description="Daily partitions: partition D holds, for every customer signed up before D, the on-prem "
    "features of the catalog (purchases, spend, tickets, tenure, plan) as of the start of day D "
    "(event_timestamp = midnight), computed in the warehouse only from accepted rows that happened and had "
    "arrived before that moment (the transactions partitions up to D - 1). Stored in platform.customer_features; a rerun replaces its days (same rows, no "
    "duplicates). A failure means an unreachable warehouse; the export keeps its last good version.",
)
@scrubbed
def customer_features(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, dask: DaskResource
) -> dg.MaterializeResult:
    wh = warehouse.client()
    days = run_days(context)
    snapshots = [as_of(d) for d in days]
    last = snapshots[-1]
    people = onprem_features.read_people(wh, warehouse.sources())
    spine = people.join(pl.DataFrame({"as_of": snapshots}), how="cross").filter(
        pl.col("signup_date") < pl.col("as_of").dt.date()
    )
    sources = onprem_features.read_sources(wh, last)
    tasks = []
    with dask.client() as client:  # with the on-prem cluster: one task per chunk of days on its workers
        if client is None:
            features = onprem_features.compute_days(spine, sources, people)
        else:
            features, tasks = onprem_features.compute_on_cluster(client, spine, sources, people)
    window = Window(
        catalog.EVENT_TS, snapshots[0], last + timedelta(seconds=1), day_key(days[0]), day_key(days[-1])
    )
    wh.replace_window(f"{PLATFORM_SCHEMA}.customer_features", features, window)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": features.height,
            "days": len(days),
            "first_snapshot": str(snapshots[0]),
            "last_snapshot": str(last),
            "features": len(catalog.features_of(catalog.ACTIVITY_VIEW)),
            "compute_engine": dask.describe(),
            **(
                {
                    "compute_tasks": len(tasks),
                    "compute_workers": sorted({t["worker"] for t in tasks if t["worker"]}),
                }
                if tasks
                else {}
            ),
        }
    )


@dg.asset(
    group_name=GROUP,
    deps=["transactions"],
    kinds={"polars", "duckdb"},
    tags=ONPREM,
    retry_policy=RETRY,
    description="Churn label per (customer, snapshot), computed in the warehouse from the accepted "
    "transactions: 1 if a customer active in the 14 days before the snapshot made no purchase in the 30 days "
    "after it, a snapshot every 7 days (the defaults of HYBRID_ACTIVE_DAYS, HYBRID_LABEL_HORIZON_DAYS and "
    "HYBRID_SNAPSHOT_EVERY_DAYS). Only snapshots with a complete horizon; stored in platform.churn_labels. A failure means no "
    "accepted transactions yet or an unreachable warehouse; the label export keeps its last good version.",
)
@scrubbed
def churn_labels(warehouse: WarehouseResource, label_policy: LabelPolicy) -> dg.MaterializeResult:
    wh = warehouse.client()
    window = labels.data_window(wh)
    if window is None:
        raise dg.Failure(description="no accepted transactions: nothing to compute features from")
    txns = wh.query(f"select customer_id, event_ts from {PLATFORM_SCHEMA}.transactions")
    definition = label_policy.definition()
    frame = labels.compute_labels(txns, *window, definition)
    wh.replace_tables({f"{PLATFORM_SCHEMA}.churn_labels": frame})
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "snapshots": frame[catalog.EVENT_TS].n_unique(),
            "churn_rate": float(frame["churned"].mean() or 0.0),
            **definition.as_metadata(),
        }
    )


def _table_check(table: str, suite_fn, description: str, daily: bool = False) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=table, name=f"{table}_contract", blocking=True, description=description)
    @scrubbed
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        sql, params = f"select * from {PLATFORM_SCHEMA}.{table}", None
        days = check_days(context, daily)
        if days:
            sql += f" where {catalog.EVENT_TS} between ? and ?"
            params = [as_of(days[0]), as_of(days[-1])]
        return gx_check_result(
            validate(
                warehouse.client().query(sql, params), suite_fn(), redact=warehouse.sources().pii_columns
            )
        )

    return _check


customer_features_contract = _table_check(
    "customer_features",
    lambda: feature_suites.feature_suite(catalog.ACTIVITY_VIEW, "customer_features"),
    "GX suite derived from the catalog, on platform.customer_features in the warehouse: exactly the "
    "catalog's columns, one row per customer and snapshot, every feature non-null and inside its declared "
    "range. Judges the days the run wrote. A failure (usually a feature computation or a declared range that "
    "is wrong) blocks the export: nothing new crosses to the cloud.",
    daily=True,
)
churn_labels_contract = _table_check(
    "churn_labels",
    feature_suites.labels_suite,
    "GX suite on platform.churn_labels in the warehouse: exactly customer_id, event_timestamp and churned, "
    "at least one row, churned is 0 or 1, one label per customer and snapshot. A failure blocks the label "
    "export: the cloud keeps training on the previous labels.",
)
