"""The row rules of the raw tables, without Dagster: which source rows a run reads, which it accepts, and the
platform.quarantine rows of the others (with their reason)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import polars as pl

from core.contracts import DUPLICATE_KEY, UNKNOWN_CUSTOMER, TableContract, arrival_cutoff
from core.days import as_of, day_key
from core.sources import Source
from resources.warehouse import NO_ARRIVAL_DAY, Window


def found_columns(wh, source: Source) -> dict[str, str]:
    """Column -> SQL type of the source's table in the warehouse (empty when there is no such table)."""
    schema, table = source.schema_and_table
    return wh.columns(table, schema)


def schema_problems(source: Source, found: dict[str, str]) -> tuple[str, dict] | None:
    """What is wrong with the source table's columns, as a message and metadata (the lines of
    core.sources.Source.column_problems, which `hybrid sources check` prints too); None when the table has
    every column the mapping names, each of its contract type."""
    problems = source.column_problems(found)
    if not problems:
        return None
    where = source.table if source.table == source.name else f"{source.table} ({source.name})"
    return (
        f"source table {where} does not match its contract: {'; '.join(problems)} "
        "(`hybrid sources check` lists every problem)",
        {"problems": problems},
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


def read_all(wh, source: Source) -> pl.DataFrame:
    """Every source row of an unpartitioned table, in arrival order, under the contract's column names."""
    contract = source.contract
    return wh.query(
        f"select * from ({source.relation()}) t order by {contract.arrival} nulls last, {contract.key}"
    )


def read_window(wh, source: Source, days: list[date], now: datetime) -> tuple[pl.DataFrame, Window]:
    """Source rows that arrived on ``days`` plus the ones no day owns (no arrival time, or one in the future:
    every run quarantines them again), each flagged ``_replayed`` when its key already arrived on an earlier
    day. Under the contract's column names."""
    contract, relation = source.contract, source.relation()
    column = contract.partition_column
    window = Window(
        column, as_of(days[0]), as_of(days[-1]) + timedelta(days=1), day_key(days[0]), day_key(days[-1])
    )
    cols = ", ".join(f"t.{c}" for c in contract.columns)
    rows = wh.query(
        f"select {cols}, exists (select 1 from ({relation}) e where e.{contract.key} = t.{contract.key} "
        f"and e.{column} < ?) as _replayed from ({relation}) t "
        f"where (t.{column} >= ? and t.{column} < ?) or t.{column} is null or t.{column} > ? "
        f"order by t.{contract.arrival} nulls last, t.{contract.key}",
        [window.start, window.start, window.end, arrival_cutoff(now)],
    )
    return rows, window


def rows_before_first_day(wh, source: Source, first_day: date) -> tuple[int, date | None]:
    """How many source rows arrived before the first daily partition (no partition reads them), and the
    earliest one's day."""
    column = source.contract.partition_column
    count, earliest = wh.query(
        f"select count(*), min({column}) from ({source.relation(column)}) t where {column} < ?",
        [as_of(first_day)],
    ).row(0)
    return int(count), (earliest.date() if earliest is not None else None)


def before_first_day_message(source: Source, count: int, first_day: date, earliest: date | None) -> str:
    return (
        f"{count} {source.table} rows arrived before the first partition day {first_day} and are not loaded"
        + (
            f" (the earliest on {earliest}: `first_day: {earliest}` in the source mapping loads them)"
            if earliest
            else ""
        )
    )


def count_by_reason(bad: pl.DataFrame, column: str = "_reason") -> dict[str, int]:
    """Quarantined rows per reason, most frequent first."""
    return dict(bad.group_by(column).len().sort("len", descending=True).iter_rows())
