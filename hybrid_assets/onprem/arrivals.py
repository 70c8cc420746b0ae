"""When new rows landed in the warehouse's source tables, without Dagster: the watermarks the on-prem sensor
keeps as its cursor, and the days a run must cover: the arrival days of the new transactions (a range of daily
partitions in one run), or the newest day when only customers or tickets changed."""

from datetime import date, datetime

from core.contracts import arrival_cutoff
from core.days import clamp
from core.sources import Sources

# What moves each table's watermark, over the source's columns under the contract's names (core/sources.py).
# The transactions' watermark ignores arrival times in the future (a loader with a wrong clock): such a row is
# quarantined by the raw gate and must not move the watermark or the day range. Its count still moves the
# cursor, so the next run quarantines it at once.
WATERMARK_SQL = {  # table -> (the column, the query)
    "customers": ("customer_id", "select max(customer_id), count(*) from ({relation}) t"),
    "transactions": (
        "ingested_at",
        "select max(case when ingested_at <= ? then ingested_at end), count(*) from ({relation}) t",
    ),
    "support_tickets": ("opened_ts", "select max(opened_ts), count(*) from ({relation}) t"),
}


def read_watermarks(wh, sources: Sources) -> dict[str, list[str]]:
    """The newest arrival (or id) and the row count of each source table."""
    marks = {}
    cutoff = arrival_cutoff()
    for table, (column, sql) in WATERMARK_SQL.items():
        query = sql.format(relation=sources[table].relation(column))
        high, count = wh.query(query, [cutoff] if "?" in sql else None).row(0)
        marks[table] = [str(high), str(count)]
    return marks


def arrival_days(wh, sources: Sources) -> tuple[date, date] | None:
    """First and last arrival day of the source transactions that have partitions, or None when none do.
    Arrival times in the future (past the clock-skew tolerance) do not count."""
    lo, hi = wh.query(
        f"select min(ingested_at), max(ingested_at) from ({sources['transactions'].relation('ingested_at')}) t "
        "where ingested_at <= ?",
        [arrival_cutoff()],
    ).row(0)
    return None if lo is None else clamp(lo.date(), hi.date(), sources.first_day)


def days_to_run(before: dict, marks: dict, wh, sources: Sources) -> tuple[date, date] | None:
    """The partition days a tick asks for: everything on the first tick, from the previous newest arrival day
    to the new one when transactions moved, and the newest day when only customers or tickets changed."""
    if not before:
        return arrival_days(wh, sources)
    high = marks["transactions"][0]
    if high == "None":
        return None
    last = datetime.fromisoformat(high).date()
    first = last
    if before.get("transactions") != marks["transactions"] and before["transactions"][0] != "None":
        first = min(datetime.fromisoformat(before["transactions"][0]).date(), last)
    return clamp(first, last, sources.first_day)
