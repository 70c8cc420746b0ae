"""On-prem assets: raw tables (validated, bad rows quarantined) -> features and labels -> the export.

Everything above the export stays in the warehouse; the export is the only thing that crosses to the cloud.
"""

import json
from datetime import date, datetime, timedelta

import dagster as dg
import polars as pl

from core import catalog
from core.contracts import (
    CONTRACTS,
    DUPLICATE_KEY,
    PII_COLUMNS,
    UNKNOWN_CUSTOMER,
    TableContract,
    arrival_cutoff,
    type_matches,
)
from core.days import FIRST_DAY, as_of, day_key
from expectations import features as feature_suites
from expectations.runner import validate
from hybrid_assets.onprem import features as onprem_features
from hybrid_assets.onprem.residency import scrubbed
from hybrid_assets.partitions import DAILY, PREVIOUS_DAYS, SINGLE_RUN, run_days
from resources.dask_cluster import DaskResource
from resources.object_store import ObjectStoreResource
from resources.warehouse import NO_ARRIVAL_DAY, PLATFORM_SCHEMA, WarehouseResource, Window

EXPORT_FEATURES_KEY = catalog.ACTIVITY_EXPORT_KEY
EXPORT_LABELS_KEY = catalog.LABELS_EXPORT_KEY
RAW_GROUP, FEATURES_GROUP, EXPORT_GROUP = "raw", "features", "export"
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)


class SchemaMismatch(dg.Failure):
    """The source table no longer matches its contract. Not retried: only a person can fix it."""

    def __init__(self, description: str, metadata: dict | None = None):
        super().__init__(description=description, metadata=metadata, allow_retries=False)


def check_schema(contract: TableContract, found: dict[str, str]) -> None:
    """Fail naming missing, unexpected and retyped columns (a rename shows up as missing + unexpected)."""
    if not found:
        raise SchemaMismatch(f"source table {contract.table} does not exist in the warehouse")
    missing = [c for c in contract.columns if c not in found]
    unexpected = [c for c in found if c not in contract.columns]
    retyped = [
        f"{c} is {found[c]}, expected {t}"
        for c, t in contract.columns.items()
        if c in found and not type_matches(t, found[c])
    ]
    parts = [
        f"{label} {', '.join(names)}"
        for label, names in (
            ("missing column(s)", missing),
            ("unexpected column(s)", unexpected),
            ("wrong type:", retyped),
        )
        if names
    ]
    if parts:
        raise SchemaMismatch(
            f"schema of source table {contract.table} changed: {'; '.join(parts)}",
            metadata={"missing_columns": missing, "unexpected_columns": unexpected, "wrong_types": retyped},
        )


def split_rows(
    contract: TableContract,
    rows: pl.DataFrame,
    known_customers: pl.Series | None,
    replayed: pl.Series | None = None,
    now: datetime | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accepted rows, and the rest with the first rule each breaks (row rules, duplicate key, unknown customer).

    ``replayed`` marks rows whose key already arrived in an earlier partition: duplicates too, whatever order
    the partitions run in. ``now`` is the run's clock, for the rules about the future."""
    reason = pl.lit(None, dtype=pl.String)
    now = now or datetime.now()
    checks: list[tuple[str, pl.Expr]] = [(r.reason, r.invalid(now)) for r in contract.rules]
    duplicate = pl.col(contract.key).is_duplicated() & (pl.int_range(pl.len()).over(contract.key) > 0)
    if replayed is not None:
        duplicate = duplicate | pl.lit(replayed)
    checks.append((DUPLICATE_KEY, duplicate))
    if known_customers is not None:
        checks.append((UNKNOWN_CUSTOMER, ~pl.col("customer_id").is_in(known_customers.implode())))
    for text, invalid in reversed(checks):  # first rule wins
        reason = pl.when(invalid.fill_null(False)).then(pl.lit(text)).otherwise(reason)
    flagged = rows.with_columns(_reason=reason)
    accepted = flagged.filter(pl.col("_reason").is_null()).drop("_reason")
    bad = flagged.filter(pl.col("_reason").is_not_null())
    return accepted, bad


def quarantine_rows(
    contract: TableContract,
    bad: pl.DataFrame,
    run_id: str,
    partition_column: str | None = None,
    now: datetime | None = None,
) -> pl.DataFrame:
    """Rows for platform.quarantine (columns in the table's order); ``partition_key`` is the row's arrival
    day for a partitioned table ('' when no day owns it: no arrival time, or one in the future), null
    otherwise."""
    now = now or datetime.now()
    body = bad.drop("_reason")
    if partition_column is None:
        keys = [None] * bad.height
    else:
        cutoff = arrival_cutoff(now)
        keys = [
            t.date().isoformat() if t is not None and t <= cutoff else NO_ARRIVAL_DAY
            for t in bad[partition_column].to_list()
        ]
    return pl.DataFrame(
        {
            "source_table": [contract.table] * bad.height,
            "row_key": [str(v) for v in bad[contract.key].to_list()],
            "reason": bad["_reason"].to_list(),
            "row_json": [json.dumps(r, default=str) for r in body.to_dicts()],
            "detected_at": [now] * bad.height,
            "run_id": [run_id] * bad.height,
            "partition_key": keys,
        },
        schema={
            "source_table": pl.String,
            "row_key": pl.String,
            "reason": pl.String,
            "row_json": pl.String,
            "detected_at": pl.Datetime("us"),
            "run_id": pl.String,
            "partition_key": pl.String,
        },
    )


def _read_window(wh, contract: TableContract, days: list[date], now: datetime) -> tuple[pl.DataFrame, Window]:
    """Source rows that arrived on ``days`` plus the ones no day owns (no arrival time, or one in the future:
    every run quarantines them again), each flagged ``_replayed`` when its key already arrived on an earlier
    day."""
    column = contract.partition_column
    window = Window(
        column, as_of(days[0]), as_of(days[-1]) + timedelta(days=1), day_key(days[0]), day_key(days[-1])
    )
    cols = ", ".join(f"t.{c}" for c in contract.columns)
    rows = wh.query(
        f"select {cols}, exists (select 1 from {contract.table} e where e.{contract.key} = t.{contract.key} "
        f"and e.{column} < ?) as _replayed from {contract.table} t "
        f"where (t.{column} >= ? and t.{column} < ?) or t.{column} is null or t.{column} > ? "
        f"order by t.{contract.arrival} nulls last, t.{contract.key}",
        [window.start, window.start, window.end, arrival_cutoff(now)],
    )
    return rows, window


def _raw_asset(contract: TableContract, deps: list[str], description: str) -> dg.AssetsDefinition:
    partitioned = contract.partition_column is not None

    @dg.asset(
        name=contract.table,
        group_name=RAW_GROUP,
        deps=deps,
        description=description,
        kinds={"duckdb", "polars"},
        retry_policy=RETRY,
        partitions_def=DAILY if partitioned else None,
        backfill_policy=SINGLE_RUN if partitioned else None,
        tags={"boundary": "onprem", "pii": "true" if contract.pii else "false"},
    )
    @scrubbed
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        wh = warehouse.client()
        check_schema(contract, wh.columns(contract.table))
        now = datetime.now()  # one clock for the read and the rules about the future
        before_first_day = 0
        if partitioned:
            rows, window = _read_window(wh, contract, run_days(context), now)
            before_first_day = rows_before_first_day(wh, contract)
            replayed = rows["_replayed"]
            rows = rows.drop("_replayed")
        else:
            rows = wh.query(
                f"select {', '.join(contract.columns)} from {contract.table} "
                f"order by {contract.arrival} nulls last, {contract.key}"
            )
            replayed = None
        known = None
        if contract.references_customers:
            known = wh.query(f"select customer_id from {PLATFORM_SCHEMA}.customers")["customer_id"]
        accepted, bad = split_rows(contract, rows, known, replayed, now)
        quarantined = quarantine_rows(contract, bad, context.run.run_id, contract.partition_column, now)
        if partitioned:
            wh.replace_window(f"{PLATFORM_SCHEMA}.{contract.table}", accepted, window, quarantined)
        else:
            wh.publish(contract.table, accepted, quarantined)
        by_reason = dict(bad.group_by("_reason").len().sort("len", descending=True).iter_rows())
        share = bad.height / rows.height if rows.height else 0.0
        if bad.height:
            context.log.warning(
                f"{contract.table}: {bad.height} of {rows.height} rows quarantined: {by_reason}"
            )
        if before_first_day:
            context.log.warning(before_first_day_message(contract, before_first_day))
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": accepted.height,
                "rows_read": rows.height,
                "rows_quarantined": bad.height,
                "quarantine_share": float(share),
                "quarantined_by_reason": by_reason,
                **({"rows_before_first_day": before_first_day} if partitioned else {}),
            }
        )

    return _asset


def rows_before_first_day(wh, contract: TableContract) -> int:
    """Source rows that arrived before the first daily partition: no partition reads them."""
    first = as_of(date.fromisoformat(FIRST_DAY))
    return int(
        wh.scalar(f"select count(*) from {contract.table} where {contract.partition_column} < ?", [first])
    )


def before_first_day_message(contract: TableContract, count: int) -> str:
    return (
        f"{count} {contract.table} rows arrived before the first partition day {FIRST_DAY} and are not loaded "
        "(core/days.py FIRST_DAY)"
    )


customers = _raw_asset(
    CONTRACTS["customers"],
    [],
    "Customers accepted from the on-prem warehouse's source table `customers` (signup date, region, plan, and "
    "PII: names, emails, phones, birth dates), so this table never leaves the warehouse. Invalid rows go to "
    "platform.quarantine with their reason. "
    "A failure means the source table's columns changed (the message names them; not retried) or the "
    "warehouse was unreachable; everything downstream keeps its last good output.",
)
transactions = _raw_asset(
    CONTRACTS["transactions"],
    ["customers"],
    "Purchases accepted from the on-prem warehouse's source table `transactions`: no null keys, no negative "
    "amounts, no future timestamps, no duplicate ids, no unknown customers. The rest goes to "
    "platform.quarantine with the reason. "
    "A failure means the source table's columns changed (the message names them; not retried) or the "
    "warehouse was unreachable; everything downstream keeps its last good output.",
)
support_tickets = _raw_asset(
    CONTRACTS["support_tickets"],
    ["customers"],
    "Support tickets (opened and resolved times, severity) accepted from the on-prem warehouse's source table "
    "`support_tickets`: no null keys, no future or resolved-before-opened times, no duplicate ids, no unknown "
    "customers. The rest goes to platform.quarantine with the reason. "
    "A failure means the source table's columns changed (the message names them; not retried) or the "
    "warehouse was unreachable; everything downstream keeps its last good output.",
)


def data_window(wh) -> tuple[date, date]:
    """First purchase day and the day after the last one: features are computed up to ``data_end``."""
    lo, hi = wh.query(f"select min(event_ts) lo, max(event_ts) hi from {PLATFORM_SCHEMA}.transactions").row(0)
    if lo is None:
        raise dg.Failure(description="no accepted transactions: nothing to compute features from")
    return lo.date(), hi.date() + timedelta(days=1)


def _ts(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


@dg.asset(
    group_name=FEATURES_GROUP,
    deps=["customers", dg.AssetDep("transactions", partition_mapping=PREVIOUS_DAYS), "support_tickets"],
    kinds={"polars", "duckdb"},
    tags={"boundary": "onprem"},
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
    people = wh.query(f"select customer_id, signup_date, plan from {PLATFORM_SCHEMA}.customers")
    spine = people.join(pl.DataFrame({"as_of": snapshots}), how="cross").filter(
        pl.col("signup_date") < pl.col("as_of").dt.date()
    )
    # sources in a fixed order, so a rerun reads the same rows the same way
    sources = {
        "transactions": wh.query(
            # amount stays DECIMAL: its sums are exact, so a day computed alone or inside a range of days (a
            # different row layout) gives the same bits
            f"select customer_id, amount, category, channel, event_ts, "
            f"ingested_at from {PLATFORM_SCHEMA}.transactions where event_ts < ? and ingested_at < ? "
            f"order by customer_id, event_ts, transaction_id",
            [last, last],
        ),
        "support_tickets": wh.query(
            f"select customer_id, opened_ts, severity, resolved_ts from {PLATFORM_SCHEMA}.support_tickets "
            f"where opened_ts < ? order by customer_id, opened_ts, ticket_id",
            [last],
        ),
    }
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


def compute_labels(txns: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Churn labels for every weekly snapshot whose 30-day horizon is fully observed."""
    frames = []
    for day in catalog.weekly_snapshots(start, end):
        if day + timedelta(days=catalog.LABEL_HORIZON_DAYS) > end:
            continue
        snap = _ts(day)
        active = (
            txns.filter(
                pl.col("event_ts").is_between(snap - timedelta(days=catalog.ACTIVE_DAYS), snap, closed="left")
            )
            .select(catalog.ENTITY_KEY)
            .unique()
        )
        bought = txns.filter(
            pl.col("event_ts").is_between(
                snap, snap + timedelta(days=catalog.LABEL_HORIZON_DAYS), closed="left"
            )
        )[catalog.ENTITY_KEY].unique()
        frames.append(
            active.with_columns(
                pl.lit(snap, dtype=pl.Datetime("us")).alias(catalog.EVENT_TS),
                (~pl.col(catalog.ENTITY_KEY).is_in(bought.implode())).cast(pl.Int64).alias("churned"),
            )
        )
    schema = {catalog.ENTITY_KEY: pl.Int64, catalog.EVENT_TS: pl.Datetime("us"), "churned": pl.Int64}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).cast(schema).sort(catalog.EVENT_TS, catalog.ENTITY_KEY)


@dg.asset(
    group_name=FEATURES_GROUP,
    deps=["transactions"],
    kinds={"polars", "duckdb"},
    tags={"boundary": "onprem"},
    retry_policy=RETRY,
    description="Churn label per (customer, weekly snapshot), computed in the warehouse from the accepted "
    "transactions: 1 if a customer active in the 14 days before the snapshot made no purchase in the 30 days "
    "after it. Only snapshots with a complete horizon; stored in platform.churn_labels. A failure means no "
    "accepted transactions yet or an unreachable warehouse; the label export keeps its last good version.",
)
@scrubbed
def churn_labels(warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.client()
    start, end = data_window(wh)
    txns = wh.query(f"select customer_id, event_ts from {PLATFORM_SCHEMA}.transactions")
    labels = compute_labels(txns, start, end)
    wh.replace_tables({f"{PLATFORM_SCHEMA}.churn_labels": labels})
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": labels.height,
            "snapshots": labels[catalog.EVENT_TS].n_unique(),
            "churn_rate": float(labels["churned"].mean() or 0.0),
        }
    )


def _audit(frame: pl.DataFrame, suite_fn) -> None:
    """Audit before publishing: a bad export never becomes visible to Feast or the cloud location."""
    audit = validate(frame, suite_fn(), redact=PII_COLUMNS)
    if not audit.success:
        raise dg.Failure(
            description=f"not exported, the previous export stays: {audit.summary()}", allow_retries=False
        )


def _export(name: str, table: str, key: str, suite_fn, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        group_name=EXPORT_GROUP,
        deps=[table],
        kinds={"parquet", "s3"},
        tags={"boundary": "crosses-to-cloud"},
        retry_policy=RETRY,
        description=description,
        metadata={"object_key": key},
    )
    @scrubbed
    def _asset(warehouse: WarehouseResource, object_store: ObjectStoreResource) -> dg.MaterializeResult:
        frame = warehouse.client().query(f"select * from {PLATFORM_SCHEMA}.{table}")
        _audit(frame, suite_fn)
        store = object_store.client()
        store.write_parquet(key, frame)  # one atomic object: readers see the old export or the new one
        return dg.MaterializeResult(
            metadata={"dagster/row_count": frame.height, "uri": store.uri(key), "columns": frame.columns}
        )

    return _asset


def _daily_export(name: str, table: str, prefix: str, suite_fn, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        group_name=EXPORT_GROUP,
        deps=[table],
        kinds={"parquet", "s3"},
        tags={"boundary": "crosses-to-cloud"},
        retry_policy=RETRY,
        partitions_def=DAILY,
        backfill_policy=SINGLE_RUN,
        description=description,
        metadata={"object_key": f"{prefix}<YYYY-MM-DD>.parquet"},
    )
    @scrubbed
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, object_store: ObjectStoreResource
    ) -> dg.MaterializeResult:
        days = run_days(context)
        frame = warehouse.client().query(
            f"select * from {PLATFORM_SCHEMA}.{table} where {catalog.EVENT_TS} between ? and ? "
            f"order by {catalog.EVENT_TS}, {catalog.ENTITY_KEY}",
            [as_of(days[0]), as_of(days[-1])],
        )
        _audit(frame, suite_fn)
        store = object_store.client()
        written, unchanged, empty = [], [], []
        for day in days:  # one atomic object per day: a reader sees a day's old rows or its new ones
            rows = frame.filter(pl.col(catalog.EVENT_TS) == as_of(day))
            if not rows.height:
                empty.append(day_key(day))  # nobody had signed up yet: no object, Feast sees no rows
                continue
            if store.write_parquet_if_changed(catalog.day_object(prefix, day), rows):
                written.append(day_key(day))
            else:
                unchanged.append(day_key(day))
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": frame.height,
                "days_written": len(written),
                "days_unchanged": len(unchanged),  # a rerun with the same rows rewrites nothing
                "days_without_rows": empty,
                "uri": store.uri(catalog.day_object(prefix, days[-1])),
                "columns": frame.columns,
            }
        )

    return _asset


customer_feature_export = _daily_export(
    "customer_feature_export",
    "customer_features",
    EXPORT_FEATURES_KEY,
    lambda: feature_suites.feature_suite(catalog.ACTIVITY_VIEW, "customer_feature_export"),
    "The curated features that cross to the cloud, one Parquet object per day: partition D of "
    "platform.customer_features written to exports/customer_activity/D.parquet (customer_id, event_timestamp and "
    "the catalog's on-prem features, no PII column; its check fails on any column outside the catalog). The "
    "folder is Feast's source for customer_activity. Audited before it is published: a failure means the audit "
    "or the object store failed, and the cloud keeps the previous objects.",
)
churn_label_export = _export(
    "churn_label_export",
    "churn_labels",
    EXPORT_LABELS_KEY,
    feature_suites.labels_suite,
    "Churn labels that cross to the cloud for training: platform.churn_labels written as Parquet to the object "
    "store (customer_id, event_timestamp, churned; no PII). Audited before it is published: a failure means the "
    "audit or the object store failed, and the cloud keeps training on the previous labels.",
)

ASSETS = [
    customers,
    transactions,
    support_tickets,
    customer_features,
    churn_labels,
    customer_feature_export,
    churn_label_export,
]
