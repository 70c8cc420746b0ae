"""The on-prem warehouse: a DuckDB file (embedded profile) or PostgreSQL (hybrid profile).

Only the ``onprem`` code location is given this resource: the sensitive tables never leave it.
Connections are short-lived, so the sensor, the generator and runs can take turns on one DuckDB file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from pydantic import Field

from core.redaction import scrub

SOURCE_TABLES = ("customers", "transactions", "support_tickets")
PLATFORM_SCHEMA = "platform"
QUARANTINE_TABLE = f"{PLATFORM_SCHEMA}.quarantine"
QUARANTINE_DDL = f"""create table if not exists {QUARANTINE_TABLE} (
    source_table VARCHAR, row_key VARCHAR, reason VARCHAR, row_json VARCHAR,
    detected_at TIMESTAMP, run_id VARCHAR, partition_key VARCHAR)"""
# warehouses created before partitions lack the column (both DuckDB and PostgreSQL accept this form)
QUARANTINE_MIGRATION = f"alter table {QUARANTINE_TABLE} add column if not exists partition_key VARCHAR"
NO_ARRIVAL_DAY = ""  # partition_key of quarantined rows that have no arrival time, so belong to no day


@dataclass(frozen=True)
class Window:
    """Rows of ``table`` with ``column`` in ``[start, end)``: what one run of a daily partition range owns.

    Quarantined rows of the range are those of ``source_table`` with ``partition_key`` in
    ``[first_key, last_key]``, plus the ones that have no arrival day (rewritten by every run)."""

    column: str
    start: datetime
    end: datetime
    first_key: str
    last_key: str


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or answered with an error; the message names it."""


class DuckDBWarehouse:
    """On-prem warehouse in one DuckDB file."""

    default_schema = "main"

    def __init__(self, path: str | Path, read_only: bool = False, lock_timeout_s: float = 60.0):
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout_s = lock_timeout_s

    def describe(self) -> str:
        return f"DuckDB warehouse at {self.path}"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.read_only and not self.path.exists():
            raise WarehouseError(f"{self.describe()} does not exist yet: run `hybrid generate` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=self.read_only)
                break
            except duckdb.IOException as exc:  # another process holds the file lock: wait our turn
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseError(f"{self.describe()} is not available: {scrub(str(exc))}") from None
                time.sleep(0.2)
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        with self.connect() as con:
            relation = con.sql(sql, params=params or None)
            return pl.from_arrow(relation.to_arrow_table()) if relation is not None else pl.DataFrame()

    def scalar(self, sql: str, params: list | None = None):
        with self.connect() as con:
            row = con.execute(sql, params or []).fetchone()
            return None if row is None else row[0]

    def execute(self, sql: str, params: list | None = None) -> None:
        with self.connect() as con:
            con.execute(sql, params or [])

    def columns(self, table: str, schema: str = "main") -> dict[str, str]:
        """Column name -> SQL type of a table; empty when the table does not exist."""
        with self.connect() as con:
            rows = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
        return {name: dtype for name, dtype in rows}

    def table_exists(self, table: str, schema: str = "main") -> bool:
        return bool(self.columns(table, schema))

    def replace_tables(self, frames: dict[str, pl.DataFrame]) -> None:
        """Replace several tables in one transaction: readers see all the old ones or all the new ones."""
        with self.connect() as con:
            con.execute(f"create schema if not exists {PLATFORM_SCHEMA}")
            con.execute("begin transaction")
            try:
                for i, (name, frame) in enumerate(frames.items()):
                    view = f"__incoming_{i}"
                    con.register(view, frame.to_arrow())
                    con.execute(f"create or replace table {name} as select * from {view}")
                    con.unregister(view)
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise

    def publish(self, table: str, accepted: pl.DataFrame, quarantined: pl.DataFrame | None = None) -> None:
        """Replace ``platform.<table>`` with the accepted rows and ``table``'s share of ``platform.quarantine``
        with the quarantined ones, in one transaction: a failed write leaves the last good state."""
        with self.connect() as con:
            con.execute(f"create schema if not exists {PLATFORM_SCHEMA}")
            con.execute(QUARANTINE_DDL)
            con.execute(QUARANTINE_MIGRATION)
            con.execute("begin transaction")
            try:
                con.register("__accepted", accepted.to_arrow())
                con.execute(f"create or replace table {PLATFORM_SCHEMA}.{table} as select * from __accepted")
                con.unregister("__accepted")
                if quarantined is not None:
                    con.execute(f"delete from {QUARANTINE_TABLE} where source_table = ?", [table])
                    con.register("__quarantined", quarantined.to_arrow())
                    con.execute(f"insert into {QUARANTINE_TABLE} by name select * from __quarantined")
                    con.unregister("__quarantined")
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise

    def replace_window(
        self, name: str, frame: pl.DataFrame, window: Window, quarantined: pl.DataFrame | None = None
    ) -> None:
        """Replace the rows of ``name`` inside ``window`` with ``frame`` (and, given ``quarantined``, the
        window's share of platform.quarantine), in one transaction: rerunning a window replaces it, never
        duplicates it, and a failure leaves the last good rows."""
        with self.connect() as con:
            con.execute(f"create schema if not exists {PLATFORM_SCHEMA}")
            con.execute(QUARANTINE_DDL)
            con.execute(QUARANTINE_MIGRATION)
            con.execute("begin transaction")
            try:
                con.register("__rows", frame.to_arrow())
                con.execute(f"create table if not exists {name} as select * from __rows limit 0")
                con.execute(
                    f"delete from {name} where {window.column} >= ? and {window.column} < ?",
                    [window.start, window.end],
                )
                con.execute(f"insert into {name} by name select * from __rows")
                con.unregister("__rows")
                if quarantined is not None:
                    con.execute(*_quarantine_delete(name, window))
                    con.register("__quarantined", quarantined.to_arrow())
                    con.execute(f"insert into {QUARANTINE_TABLE} by name select * from __quarantined")
                    con.unregister("__quarantined")
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise

    def append(self, table: str, frame: pl.DataFrame) -> None:
        with self.connect() as con:
            con.register("__incoming", frame.to_arrow())
            con.execute(f"insert into {table} by name select * from __incoming")
            con.unregister("__incoming")


def _quarantine_delete(name: str, window: Window) -> tuple[str, list]:
    source = name.rpartition(".")[2]
    return (
        f"delete from {QUARANTINE_TABLE} where source_table = ? "
        "and (partition_key between ? and ? or partition_key = ?)",
        [source, window.first_key, window.last_key, NO_ARRIVAL_DAY],
    )


def _arrow(frame: pl.DataFrame):
    """Arrow with plain (not large) strings: what every ADBC driver ingests."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def redact(dsn: str) -> str:
    """host:port/db of a DSN, without user or password: safe for errors and logs."""
    from urllib.parse import urlparse

    parsed = urlparse(dsn)
    return f"{parsed.hostname}:{parsed.port or 5432}{parsed.path}"


class PostgresWarehouse:
    """On-prem warehouse in PostgreSQL, read and written as Arrow through ADBC (COPY under the hood)."""

    default_schema = "public"

    def __init__(self, dsn: str):
        self.dsn = dsn

    def describe(self) -> str:
        return f"PostgreSQL warehouse at {redact(self.dsn)}"

    @contextmanager
    def connect(self):
        import adbc_driver_postgresql.dbapi as pg

        try:
            con = pg.connect(self.dsn)
        except Exception as exc:
            raise WarehouseError(
                f"{self.describe()} is not reachable: {_scrub(str(exc), self.dsn)}"
            ) from None
        try:
            yield con
        finally:
            con.close()

    @staticmethod
    def _sql(sql: str) -> str:
        parts = sql.split("?")
        return "".join(p + (f"${i + 1}" if i < len(parts) - 1 else "") for i, p in enumerate(parts))

    def _run(self, con, sql: str, params: list | None):
        cur = con.cursor()
        try:
            cur.execute(self._sql(sql), params or None)
        except Exception as exc:
            cur.close()
            raise WarehouseError(f"{self.describe()}: {_scrub(str(exc), self.dsn)}") from None
        return cur

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame:
        with self.connect() as con:
            cur = self._run(con, sql, params)
            table = cur.fetch_arrow_table()
            cur.close()
        return _decode_numeric(table)

    def scalar(self, sql: str, params: list | None = None):
        with self.connect() as con:
            cur = self._run(con, sql, params)
            row = cur.fetchone()
            cur.close()
        return None if row is None else row[0]

    def execute(self, sql: str, params: list | None = None) -> None:
        with self.connect() as con:
            self._run(con, sql, params).close()
            con.commit()

    def columns(self, table: str, schema: str | None = None) -> dict[str, str]:
        frame = self.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema or self.default_schema, table],
        )
        return dict(frame.iter_rows())

    def table_exists(self, table: str, schema: str | None = None) -> bool:
        return bool(self.columns(table, schema))

    def _ingest(self, con, name: str, frame: pl.DataFrame, mode: str) -> None:
        schema, _, table = name.rpartition(".")
        cur = con.cursor()
        cur.adbc_ingest(table, _arrow(frame), mode=mode, db_schema_name=schema or None)
        cur.close()

    def replace_tables(self, frames: dict[str, pl.DataFrame]) -> None:
        with self.connect() as con:
            self._run(con, f"create schema if not exists {PLATFORM_SCHEMA}", None).close()
            for name, frame in frames.items():  # DDL is transactional in PostgreSQL: all or nothing
                self._run(con, f"drop table if exists {name}", None).close()
                self._ingest(con, name, frame, "create")
            con.commit()

    def publish(self, table: str, accepted: pl.DataFrame, quarantined: pl.DataFrame | None = None) -> None:
        with self.connect() as con:
            for sql in (
                f"create schema if not exists {PLATFORM_SCHEMA}",
                QUARANTINE_DDL,
                QUARANTINE_MIGRATION,
            ):
                self._run(con, sql, None).close()
            self._run(con, f"drop table if exists {PLATFORM_SCHEMA}.{table}", None).close()
            self._ingest(con, f"{PLATFORM_SCHEMA}.{table}", accepted, "create")
            if quarantined is not None:
                self._run(con, f"delete from {QUARANTINE_TABLE} where source_table = ?", [table]).close()
                if quarantined.height:
                    self._ingest(con, QUARANTINE_TABLE, quarantined, "append")
            con.commit()

    def replace_window(
        self, name: str, frame: pl.DataFrame, window: Window, quarantined: pl.DataFrame | None = None
    ) -> None:
        with self.connect() as con:  # one transaction: PostgreSQL's DDL and COPY are transactional too
            for sql in (
                f"create schema if not exists {PLATFORM_SCHEMA}",
                QUARANTINE_DDL,
                QUARANTINE_MIGRATION,
            ):
                self._run(con, sql, None).close()
            self._ingest(con, name, frame.head(0), "create_append")
            self._run(
                con,
                f"delete from {name} where {window.column} >= ? and {window.column} < ?",
                [window.start, window.end],
            ).close()
            if frame.height:
                self._ingest(con, name, frame, "append")
            if quarantined is not None:
                self._run(con, *_quarantine_delete(name, window)).close()
                if quarantined.height:
                    self._ingest(con, QUARANTINE_TABLE, quarantined, "append")
            con.commit()

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        order = list(self.columns(table))
        with self.connect() as con:
            self._ingest(con, table, frame.select(order), "append")
            con.commit()


def _decode_numeric(table) -> pl.DataFrame:
    """ADBC hands PostgreSQL NUMERIC over as an opaque text extension; make it a Polars Decimal again."""
    import pyarrow as pa

    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if isinstance(column.type, pa.BaseExtensionType):
            text = pa.chunked_array([chunk.storage for chunk in column.chunks], type=column.type.storage_type)
            columns[name] = pl.Series(name, text).str.to_decimal(scale=2)
        else:
            columns[name] = pl.from_arrow(column).alias(name)
    return pl.DataFrame(columns) if columns else pl.from_arrow(table)


def _scrub(message: str, dsn: str) -> str:
    """A driver's message without the password and without the row values it may quote (WarehouseError's
    text reaches Dagster's event log: core/redaction.py)."""
    from urllib.parse import urlparse

    password = urlparse(dsn).password
    return scrub(message.replace(password, "***") if password else message)


class WarehouseResource(dg.ConfigurableResource):
    """Connection settings for the on-prem warehouse: a DuckDB file (embedded) or a PostgreSQL DSN (hybrid,
    given as an environment variable so the secret never shows in Dagster's UI or metadata)."""

    duckdb_path: str | None = Field(default=None, description="DuckDB file that is the on-prem warehouse")
    dsn: str | None = Field(default=None, description="PostgreSQL DSN of the on-prem warehouse")

    def client(self, read_only: bool = False) -> DuckDBWarehouse | PostgresWarehouse:
        if self.dsn:
            return PostgresWarehouse(self.dsn)
        if not self.duckdb_path:
            raise WarehouseError("no warehouse configured: set HYBRID_ONPREM_DSN or use the embedded profile")
        return DuckDBWarehouse(self.duckdb_path, read_only=read_only)


def warehouse_for(settings) -> DuckDBWarehouse | PostgresWarehouse:
    """The warehouse client of a profile (CLI, generator, tests)."""
    if settings.profile == "hybrid":
        return PostgresWarehouse(settings.onprem_dsn)
    return DuckDBWarehouse(settings.warehouse_path)
