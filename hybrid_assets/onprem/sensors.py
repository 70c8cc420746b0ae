"""Rerun the on-prem graph when new rows land in the warehouse's source tables: for the arrival days of the
new transactions (a range of daily partitions in one run), or the newest day when only customers or tickets
changed."""

import json
from datetime import date, datetime

import dagster as dg

from core.contracts import arrival_cutoff
from core.days import clamp, range_tags
from hybrid_assets.onprem.residency import scrubbed
from resources.warehouse import WarehouseError, WarehouseResource

# The transactions' watermark ignores arrival times in the future (a loader with a wrong clock): such a row is
# quarantined by the raw gate and must not move the watermark or the day range. Its count still moves the
# cursor, so the next run quarantines it at once.
WATERMARK_SQL = {
    "customers": "select max(customer_id), count(*) from customers",
    "transactions": "select max(case when ingested_at <= ? then ingested_at end), count(*) from transactions",
    "support_tickets": "select max(opened_ts), count(*) from support_tickets",
}


def read_watermarks(warehouse: WarehouseResource) -> dict[str, list[str]]:
    wh = warehouse.client(read_only=True)
    marks = {}
    cutoff = arrival_cutoff()
    for table, sql in WATERMARK_SQL.items():
        high, count = wh.query(sql, [cutoff] if "?" in sql else None).row(0)
        marks[table] = [str(high), str(count)]
    return marks


def arrival_days(wh) -> tuple[date, date] | None:
    """First and last arrival day of the source transactions that have partitions, or None when none do.
    Arrival times in the future (past the clock-skew tolerance) do not count."""
    lo, hi = wh.query(
        "select min(ingested_at), max(ingested_at) from transactions where ingested_at <= ?",
        [arrival_cutoff()],
    ).row(0)
    return None if lo is None else clamp(lo.date(), hi.date())


def days_to_run(before: dict, marks: dict, wh) -> tuple[date, date] | None:
    """The partition days a tick asks for: everything on the first tick, from the previous newest arrival day
    to the new one when transactions moved, and the newest day when only customers or tickets changed."""
    if not before:
        return arrival_days(wh)
    high = marks["transactions"][0]
    if high == "None":
        return None
    last = datetime.fromisoformat(high).date()
    first = last
    if before.get("transactions") != marks["transactions"] and before["transactions"][0] != "None":
        first = min(datetime.fromisoformat(before["transactions"][0]).date(), last)
    return clamp(first, last)


def build_new_data_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(
        name="new_onprem_data",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Watches the on-prem source tables (newest ingested_at / opened_ts / customer id and the "
        "row counts). When they move past the cursor, it requests one run of the on-prem graph for the daily "
        "partitions the new transactions arrived on (all arrival days on its first tick); the cloud side "
        "follows through declarative automation.",
    )
    @scrubbed
    def new_onprem_data(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        try:
            marks = read_watermarks(warehouse)
        except WarehouseError as exc:
            return dg.SkipReason(f"warehouse not readable right now: {exc}")
        cursor = json.dumps(marks, sort_keys=True)
        if cursor == context.cursor:
            return dg.SkipReason("no new rows in the on-prem source tables")
        before = json.loads(context.cursor) if context.cursor else {}
        changed = sorted(t for t in marks if before.get(t) != marks[t])
        try:
            days = days_to_run(before, marks, warehouse.client(read_only=True))
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

    return new_onprem_data
