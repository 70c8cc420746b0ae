"""Group ``raw``: the warehouse's source tables, validated (bad rows quarantined with their reason), their
blocking GX gates, and the sensor that reruns the graph when new rows land."""

import json
from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from core.contracts import CONTRACTS, TableContract
from core.days import as_of, day_key, range_tags
from core.redaction import redact_row
from core.sources import Source
from expectations.raw import suite as raw_suite
from expectations.runner import validate
from hybrid_assets.defaults import ONPREM, RETRY
from hybrid_assets.onprem import arrivals, rows
from hybrid_assets.onprem.defs.jobs import onprem_refresh
from hybrid_assets.onprem.residency import scrubbed
from hybrid_assets.partitions import DAILY, SINGLE_RUN, check_days, run_days
from hybrid_assets.quality import QualityPolicy, gx_check_result
from resources.warehouse import (
    NO_ARRIVAL_DAY,
    PLATFORM_SCHEMA,
    QUARANTINE_TABLE,
    WarehouseError,
    WarehouseResource,
)

GROUP = "raw"
SAMPLE_ROWS = 5


class SchemaMismatch(dg.Failure):
    """The source table no longer matches its contract. Not retried: only a person can fix it."""

    def __init__(self, description: str, metadata: dict | None = None):
        super().__init__(description=description, metadata=metadata, allow_retries=False)


def check_schema(source: Source, found: dict[str, str]) -> None:
    """Fail naming the missing and retyped columns, in the warehouse's names (the mapping's)."""
    problem = rows.schema_problems(source, found)
    if problem:
        raise SchemaMismatch(problem[0], metadata=problem[1] or None)


def _raw_asset(contract: TableContract, deps: list[str], description: str) -> dg.AssetsDefinition:
    partitioned = contract.partition_column is not None

    @dg.asset(
        name=contract.table,
        group_name=GROUP,
        deps=deps,
        description=description,
        kinds={"duckdb", "polars"},
        retry_policy=RETRY,
        partitions_def=DAILY if partitioned else None,
        backfill_policy=SINGLE_RUN if partitioned else None,
        tags={**ONPREM, "pii": "true" if contract.pii else "false"},
    )
    @scrubbed
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        wh = warehouse.client()
        sources = warehouse.sources()
        source = sources[contract.table]
        check_schema(source, rows.found_columns(wh, source))
        now = datetime.now()  # one clock for the read and the rules about the future
        before_first_day, earliest = 0, None
        replayed = None
        if partitioned:
            read, window = rows.read_window(wh, source, run_days(context), now)
            before_first_day, earliest = rows.rows_before_first_day(wh, source, sources.first_day)
            replayed = read["_replayed"]
            read = read.drop("_replayed")
        else:
            read = rows.read_all(wh, source)
        known = None
        if contract.references_customers and sources["customers"].has():  # (no customers table: no rule)
            known = wh.query(f"select customer_id from {PLATFORM_SCHEMA}.customers")["customer_id"]
        accepted, bad = rows.split_rows(contract, read, known, replayed, now)
        quarantined = rows.quarantine_rows(contract, bad, context.run.run_id, contract.partition_column, now)
        if partitioned:
            wh.replace_window(f"{PLATFORM_SCHEMA}.{contract.table}", accepted, window, quarantined)
        else:
            wh.publish(contract.table, accepted, quarantined)
        by_reason = rows.count_by_reason(bad)
        share = bad.height / read.height if read.height else 0.0
        if bad.height:
            context.log.warning(
                f"{contract.table}: {bad.height} of {read.height} rows quarantined: {by_reason}"
            )
        if before_first_day:
            context.log.warning(
                rows.before_first_day_message(source, before_first_day, sources.first_day, earliest)
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": accepted.height,
                "rows_read": read.height,
                "rows_quarantined": bad.height,
                "quarantine_share": float(share),
                "quarantined_by_reason": by_reason,
                **({"rows_before_first_day": before_first_day} if partitioned else {}),
            }
        )

    return _asset


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
        sources = warehouse.sources()
        source = sources[contract.table]
        if not source.has():  # nothing to gate: the table reads as no rows, its features are off
            return dg.AssetCheckResult(
                passed=True,
                description=f"{contract.table} is not in the source mapping: no rows, and the features "
                f"that need it are off ({', '.join(n for n, needs in sources.switched_off().items() if contract.table in needs)})",
                metadata={"switched_off": True},
            )
        accepted = wh.query(f"select * from {PLATFORM_SCHEMA}.{contract.table}")
        # the whole table: keys stay unique across partitions
        result = validate(accepted, raw_suite(contract), redact=source.pii)
        days = check_days(context, contract.partition_column is not None)
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
        by_reason = rows.count_by_reason(bad, "reason")
        limit = quality_policy.max_invalid_share
        errors, warnings = [], []
        message = (
            f"{bad.height} of {total} {contract.table} rows quarantined ({share:.2%}; limit "
            f"{limit:.2%}): {by_reason}"
        )
        if bad.height:
            (errors if share > limit else warnings).append(message)
        if contract.partition_column:
            before_first_day, earliest = rows.rows_before_first_day(wh, source, sources.first_day)
            if before_first_day:
                warnings.append(
                    rows.before_first_day_message(source, before_first_day, sources.first_day, earliest)
                )
        samples = [  # keys, reasons and the non-PII columns: the full rows stay in platform.quarantine
            {"row_key": key, "reason": reason, "row": redact_row(json.loads(row), source.pii)}
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
customers_contract, transactions_contract, support_tickets_contract = (
    _raw_check(c) for c in CONTRACTS.values()
)


@dg.sensor(
    name="new_onprem_data",
    job=onprem_refresh,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches the on-prem source tables (newest ingested_at / opened_ts / customer id and the "
    "row counts). When they move past the cursor, it requests one run of the on-prem graph for the daily "
    "partitions the new transactions arrived on (all arrival days on its first tick); the cloud side "
    "follows through declarative automation.",
)
@scrubbed
def new_onprem_data(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    sources = warehouse.sources()
    try:
        marks = arrivals.read_watermarks(warehouse.client(read_only=True), sources)
    except WarehouseError as exc:
        return dg.SkipReason(f"warehouse not readable right now: {exc}")
    cursor = json.dumps(marks, sort_keys=True)
    if cursor == context.cursor:
        return dg.SkipReason("no new rows in the on-prem source tables")
    before = json.loads(context.cursor) if context.cursor else {}
    changed = sorted(t for t in marks if before.get(t) != marks[t])
    try:
        days = arrivals.days_to_run(before, marks, warehouse.client(read_only=True), sources)
    except WarehouseError as exc:
        return dg.SkipReason(f"warehouse not readable right now: {exc}")
    context.update_cursor(cursor)
    if days is None:
        return dg.SkipReason(
            f"new rows in {', '.join(changed)}, but no transaction arrived on a partition day"
        )
    return dg.RunRequest(
        run_key=cursor,
        tags={"trigger": "new_onprem_data", "changed": ",".join(changed), **range_tags(*days)},
    )
