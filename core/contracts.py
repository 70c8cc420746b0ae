"""Contracts of the on-prem source tables: the schema, the row rules that send a row to quarantine and the PII
columns. The GX suite that the accepted rows must pass is built from them in expectations/raw.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

CATEGORIES = ["grocery", "electronics", "apparel", "home", "beauty", "sports", "toys", "books"]
CHANNELS = ["online", "store", "app"]
REGIONS = ["north", "south", "east", "west", "central"]
PLANS = ["basic", "standard", "premium"]
SEVERITIES = ["low", "medium", "high", "critical"]
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@dataclass(frozen=True)
class RowRule:
    reason: str
    invalid: Callable[[datetime], pl.Expr]  # built with the run's clock: rules about "now" see one instant


@dataclass(frozen=True)
class TableContract:
    table: str
    key: str
    columns: dict[str, str]  # name -> logical type (a type family: BIGINT, VARCHAR, DATE, TIMESTAMP, DECIMAL)
    rules: tuple[RowRule, ...]
    arrival: str  # column that orders arrivals: of duplicate keys, the first to arrive is accepted
    # a table without an arrival column of its own (the mapping says `arrival: ~`) arrives at this column's time
    arrival_defaults_to: str | None = None
    references_customers: bool = False  # rows of an unknown customer are quarantined (with a customers table)
    partition_column: str | None = None  # daily partitions by this column's day (core/days.py)
    # Columns whose values never leave the warehouse, in any form: not exported, not in check metadata, GX
    # samples, logs or error messages (core/redaction.py masks them in everything sent to Dagster).
    pii: tuple[str, ...] = ()
    # Columns a mapping may leave out (`column: ~`): they read as nulls, and the features that need them are off
    # (core/catalog.py, Feature.requires). An optional key reads as the row's number in arrival order.
    optional: tuple[str, ...] = ()
    required: bool = True  # False: a mapping may leave the whole table out (it then reads as no rows)


# How far ahead of the warehouse host's clock a timestamp may be and still count as "now": loaders' clocks
# drift by seconds, not minutes. Later than that is a wrong clock; the row is quarantined and moves nothing.
CLOCK_SKEW = timedelta(minutes=5)


def arrival_cutoff(now: datetime | None = None) -> datetime:
    """The latest timestamp that is not "in the future" at ``now`` (the run's clock)."""
    return (now or datetime.now()) + CLOCK_SKEW


def _future(column: str) -> Callable[[datetime], pl.Expr]:
    return lambda now: pl.col(column) > pl.lit(arrival_cutoff(now))


def _null(column: str) -> Callable[[datetime], pl.Expr]:
    return lambda now: pl.col(column).is_null()


TYPE_FAMILIES = {
    "BIGINT": ("BIGINT", "INT8", "INTEGER", "INT", "INT4", "HUGEINT"),
    "VARCHAR": ("VARCHAR", "TEXT", "CHARACTER VARYING", "STRING"),
    "DATE": ("DATE",),
    "TIMESTAMP": ("TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE", "DATETIME"),
    "DECIMAL": ("DECIMAL", "NUMERIC"),
}


# Types a contract column also accepts because reading it casts them: a DATE event time reads as the day's
# midnight (sales data often has dates only, e.g. CDNOW's purchases). Source.relation does the cast.
READ_AS = {"TIMESTAMP": ("DATE",)}


# The type a column the mapping leaves out reads as (a typed null), by logical type.
SQL_TYPE = {
    "BIGINT": "bigint",
    "VARCHAR": "varchar",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "DECIMAL": "decimal(18, 2)",
}


def _base(found: str) -> str:
    return found.upper().split("(")[0].strip()


def type_matches(expected: str, found: str) -> bool:
    """Does a warehouse column type belong to the contract's type family (DECIMAL(12,2) is a DECIMAL), or read
    as it (a DATE for a TIMESTAMP)?"""
    return _base(found) in TYPE_FAMILIES[expected] + READ_AS.get(expected, ())


def read_by_cast(expected: str, found: str) -> bool:
    """Is a column of type ``found`` read as the contract's ``expected`` type by a cast (a DATE as a
    TIMESTAMP)?"""
    return _base(found) in READ_AS.get(expected, ())


FUTURE_ARRIVAL = "ingested_at in the future"
CUSTOMERS = TableContract(
    table="customers",
    key="customer_id",
    columns={
        "customer_id": "BIGINT",
        "full_name": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
        "birth_date": "DATE",
        "signup_date": "DATE",
        "region": "VARCHAR",
        "plan": "VARCHAR",
    },
    rules=(
        RowRule("null key customer_id", _null("customer_id")),
        RowRule("null signup_date", _null("signup_date")),
        RowRule("signup_date in the future", lambda now: pl.col("signup_date") > pl.lit(now.date())),
    ),
    arrival="signup_date",
    pii=("full_name", "email", "phone", "birth_date"),
    optional=("full_name", "email", "phone", "birth_date", "region", "plan"),
    required=False,
)
TRANSACTIONS = TableContract(
    table="transactions",
    key="transaction_id",
    columns={
        "transaction_id": "BIGINT",
        "customer_id": "BIGINT",
        "amount": "DECIMAL",
        "category": "VARCHAR",
        "channel": "VARCHAR",
        "event_ts": "TIMESTAMP",
        "ingested_at": "TIMESTAMP",
    },
    rules=(
        RowRule("null key transaction_id", _null("transaction_id")),
        RowRule("null customer_id", _null("customer_id")),
        RowRule("null or negative amount", lambda now: pl.col("amount").is_null() | (pl.col("amount") < 0)),
        RowRule("null event_ts", _null("event_ts")),
        RowRule("event_ts in the future", _future("event_ts")),
        RowRule("null ingested_at", _null("ingested_at")),
        # a loader with a wrong clock: quarantined, and never moves the day range or the sensor's watermark
        RowRule(FUTURE_ARRIVAL, _future("ingested_at")),
        # a purchase cannot reach the warehouse before it happened: a wrong event clock (in old history it is
        # not in the future, and would stretch the label snapshots past the data's last day)
        RowRule(
            "event_ts after ingested_at",
            lambda now: pl.col("event_ts") > pl.col("ingested_at") + pl.lit(CLOCK_SKEW),
        ),
    ),
    arrival="ingested_at",
    arrival_defaults_to="event_ts",
    references_customers=True,
    partition_column="ingested_at",
    optional=("transaction_id", "category", "channel"),
)
SUPPORT_TICKETS = TableContract(
    table="support_tickets",
    key="ticket_id",
    columns={
        "ticket_id": "BIGINT",
        "customer_id": "BIGINT",
        "opened_ts": "TIMESTAMP",
        "severity": "VARCHAR",
        "resolved_ts": "TIMESTAMP",
    },
    rules=(
        RowRule("null key ticket_id", _null("ticket_id")),
        RowRule("null customer_id", _null("customer_id")),
        RowRule("null opened_ts", _null("opened_ts")),
        RowRule("opened_ts in the future", _future("opened_ts")),
        RowRule("resolved before opened", lambda now: pl.col("resolved_ts") < pl.col("opened_ts")),
    ),
    arrival="opened_ts",
    references_customers=True,
    optional=("severity", "resolved_ts"),
    required=False,
)
CONTRACTS = {c.table: c for c in (CUSTOMERS, TRANSACTIONS, SUPPORT_TICKETS)}
PII_COLUMNS = frozenset(c for contract in CONTRACTS.values() for c in contract.pii)
# Names an on-prem error message may keep when it quotes them (core.redaction.scrub).
KNOWN_NAMES = frozenset(
    {"platform", "quarantine", *CONTRACTS, *(c for contract in CONTRACTS.values() for c in contract.columns)}
)
DUPLICATE_KEY = "duplicate key"
UNKNOWN_CUSTOMER = "unknown customer_id"
