"""The on-prem warehouse: a DuckDB file (embedded profile) or PostgreSQL (hybrid profile).

Only the ``onprem`` code location is given this resource: the sensitive tables never leave it.
Connections are short-lived, so the sensor, the generator and runs can take turns on one DuckDB file.
Both backends write through one primitive, ``replace_window``: ``publish`` is its unbounded window.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
SCHEMA_DDL = f"create schema if not exists {PLATFORM_SCHEMA}"
PLATFORM_DDL = (SCHEMA_DDL, QUARANTINE_DDL, QUARANTINE_MIGRATION)
NO_ARRIVAL_DAY = ""  # partition_key of quarantined rows that have no arrival time, so belong to no day


@dataclass(frozen=True)
class Window:
    """Rows of ``table`` with ``column`` in ``[start, end)``: what one run of a daily partition range owns.

    Quarantined rows of the range are those of ``source_table`` with ``partition_key`` in
    ``[first_key, last_key]``, plus the ones that have no arrival day (rewritten by every run).
    ``Window.everything()`` has no bounds: the whole table, which also takes the new frame's columns, and all
    of the table's quarantined rows."""

    column: str | None
    start: datetime | None
    end: datetime | None
    first_key: str | None
    last_key: str | None

    @classmethod
    def everything(cls) -> Window:
        return cls(None, None, None, None, None)

    @property
    def bounded(self) -> bool:
        return self.column is not None

    def quarantined(self, source: str) -> tuple[str, list]:
        """Where clause (and its parameters) of ``source``'s rows of platform.quarantine in the window."""
        if not self.bounded:
            return "source_table = ?", [source]
        return (
            "source_table = ? and (partition_key between ? and ? or partition_key = ?)",
            [source, self.first_key, self.last_key, NO_ARRIVAL_DAY],
        )


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or answered with an error; the message names it."""


@runtime_checkable
class Warehouse(Protocol):
    """What the platform asks of the on-prem warehouse, whichever backend holds it. SQL takes ``?``
    placeholders; table names may carry a schema (``platform.customers``)."""

    default_schema: str

    def describe(self) -> str: ...

    def connect(self) -> AbstractContextManager[Any]: ...

    def query(self, sql: str, params: list | None = None) -> pl.DataFrame: ...

    def scalar(self, sql: str, params: list | None = None) -> Any: ...

    def execute(self, sql: str, params: list | None = None) -> None: ...

    def columns(self, table: str, schema: str | None = None) -> dict[str, str]: ...

    def table_exists(self, table: str, schema: str | None = None) -> bool: ...

    def replace_tables(self, frames: dict[str, pl.DataFrame]) -> None: ...

    def replace_window(
        self, name: str, frame: pl.DataFrame, window: Window, quarantined: pl.DataFrame | None = None
    ) -> None: ...

    def publish(
        self, table: str, accepted: pl.DataFrame, quarantined: pl.DataFrame | None = None
    ) -> None: ...

    def append(self, table: str, frame: pl.DataFrame) -> None: ...


class _Writes(ABC):
    """What both backends share: the column lookup and the writes, over each backend's ``connect``,
    ``_transaction``, ``_statement``, ``_create`` (an empty table like a frame, unless it exists) and
    ``_insert`` (a frame's rows, matched by column)."""

    default_schema: str

    def __init__(self) -> None:
        # the PLATFORM_DDL statements a committed write of this client has run: each runs once per client
        self._ensured: set[str] = set()

    def columns(self, table: str, schema: str | None = None) -> dict[str, str]:
        """Column name -> SQL type of a table; empty when the table does not exist."""
        frame = self.query(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema or self.default_schema, table],
        )
        return dict(frame.iter_rows())

    def table_exists(self, table: str, schema: str | None = None) -> bool:
        return bool(self.columns(table, schema))

    def replace_window(
        self, name: str, frame: pl.DataFrame, window: Window, quarantined: pl.DataFrame | None = None
    ) -> None:
        """Replace the rows of ``name`` inside ``window`` with ``frame`` (and, given ``quarantined``, the
        window's share of platform.quarantine), in one transaction: rerunning a window replaces it, never
        duplicates it, and a failure leaves the last good rows."""
        with self._writing(PLATFORM_DDL) as con:
            self._replace_rows(con, name, frame, window)
            if quarantined is not None:
                where, params = window.quarantined(name.rpartition(".")[2])
                self._statement(con, f"delete from {QUARANTINE_TABLE} where {where}", params)
                self._insert(con, QUARANTINE_TABLE, quarantined)

    def publish(self, table: str, accepted: pl.DataFrame, quarantined: pl.DataFrame | None = None) -> None:
        """Replace ``platform.<table>`` with the accepted rows and ``table``'s share of ``platform.quarantine``
        with the quarantined ones, in one transaction: a failed write leaves the last good state."""
        self.replace_window(f"{PLATFORM_SCHEMA}.{table}", accepted, Window.everything(), quarantined)

    def replace_tables(self, frames: dict[str, pl.DataFrame]) -> None:
        """Replace several tables in one transaction: readers see all the old ones or all the new ones."""
        # only the schema: `hybrid quarantine` tells "no quarantine table yet" from an empty one
        with self._writing((SCHEMA_DDL,)) as con:
            for name, frame in frames.items():
                self._replace_rows(con, name, frame, Window.everything())

    @contextmanager
    def _writing(self, ddl: tuple[str, ...]) -> Iterator[Any]:
        """A connection inside one write transaction, after those of ``ddl`` this client has not run yet."""
        with self.connect() as con:
            pending = [sql for sql in ddl if sql not in self._ensured]
            for sql in pending:
                self._statement(con, sql)
            with self._transaction(con):
                yield con
            # only once committed: in PostgreSQL the DDL is part of the write's transaction
            self._ensured.update(pending)

    def _replace_rows(self, con, name: str, frame: pl.DataFrame, window: Window) -> None:
        if not window.bounded:  # dropped rather than emptied, so the table takes the frame's columns
            self._statement(con, f"drop table if exists {name}")
        self._create(con, name, frame)
        if window.bounded:
            self._statement(
                con,
                f"delete from {name} where {window.column} >= ? and {window.column} < ?",
                [window.start, window.end],
            )
        self._insert(con, name, frame)

    @abstractmethod
    def connect(self) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def query(self, sql: str, params: list | None = None) -> pl.DataFrame: ...

    @abstractmethod
    def _transaction(self, con) -> AbstractContextManager[None]: ...

    @abstractmethod
    def _statement(self, con, sql: str, params: list | None = None) -> None: ...

    @abstractmethod
    def _create(self, con, name: str, frame: pl.DataFrame) -> None: ...

    @abstractmethod
    def _insert(self, con, name: str, frame: pl.DataFrame) -> None: ...


class DuckDBWarehouse(_Writes):
    """On-prem warehouse in one DuckDB file."""

    default_schema = "main"

    def __init__(self, path: str | Path, read_only: bool = False, lock_timeout_s: float = 60.0):
        super().__init__()
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
            self._statement(con, sql, params)

    def append(self, table: str, frame: pl.DataFrame) -> None:
        with self.connect() as con:
            self._insert(con, table, frame)

    @contextmanager
    def _transaction(self, con) -> Iterator[None]:
        con.execute("begin transaction")
        try:
            yield
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise

    def _statement(self, con, sql: str, params: list | None = None) -> None:
        con.execute(sql, params or [])

    def _create(self, con, name: str, frame: pl.DataFrame) -> None:
        self._from_frame(con, frame.head(0), f"create table if not exists {name} as select * from __incoming")

    def _insert(self, con, name: str, frame: pl.DataFrame) -> None:
        self._from_frame(con, frame, f"insert into {name} by name select * from __incoming")

    @staticmethod
    def _from_frame(con, frame: pl.DataFrame, sql: str) -> None:
        """Run ``sql`` with ``frame`` readable as the view ``__incoming``."""
        con.register("__incoming", frame.to_arrow())
        con.execute(sql)
        # not in a `finally`: after a failed statement the transaction must be rolled back first
        con.unregister("__incoming")


def _arrow(frame: pl.DataFrame):
    """Arrow with plain (not large) strings: what every ADBC driver ingests."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def redact(dsn: str) -> str:
    """host:port/db of a DSN, without user or password: safe for errors and logs."""
    from urllib.parse import urlparse

    parsed = urlparse(dsn)
    return f"{parsed.hostname}:{parsed.port or 5432}{parsed.path}"


class PostgresWarehouse(_Writes):
    """On-prem warehouse in PostgreSQL, read and written as Arrow through ADBC (COPY under the hood)."""

    default_schema = "public"

    def __init__(self, dsn: str):
        super().__init__()
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
            self._statement(con, sql, params)
            con.commit()

    def append(self, table: str, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        order = list(self.columns(table))
        with self.connect() as con:
            self._insert(con, table, frame.select(order))
            con.commit()

    @contextmanager
    def _transaction(self, con) -> Iterator[None]:
        # ADBC opens the transaction itself (DDL and COPY are transactional too); closing the connection
        # without a commit rolls it back
        yield
        con.commit()

    def _statement(self, con, sql: str, params: list | None = None) -> None:
        self._run(con, sql, params).close()

    def _create(self, con, name: str, frame: pl.DataFrame) -> None:
        self._ingest(con, name, frame.head(0), "create_append")

    def _insert(self, con, name: str, frame: pl.DataFrame) -> None:
        if frame.height:
            self._ingest(con, name, frame, "append")

    def _ingest(self, con, name: str, frame: pl.DataFrame, mode: str) -> None:
        schema, _, table = name.rpartition(".")
        cur = con.cursor()
        cur.adbc_ingest(table, _arrow(frame), mode=mode, db_schema_name=schema or None)
        cur.close()


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
    sources_file: str | None = Field(
        default=None, description="the source mapping (sources.yaml; unset: the contracts' own table names)"
    )

    def client(self, read_only: bool = False) -> Warehouse:
        if self.dsn:
            return PostgresWarehouse(self.dsn)
        if not self.duckdb_path:
            raise WarehouseError("no warehouse configured: set HYBRID_ONPREM_DSN or use the embedded profile")
        return DuckDBWarehouse(self.duckdb_path, read_only=read_only)

    def sources(self):
        """Where the source tables are in this warehouse (core/sources.py)."""
        from core import sources

        return sources.load(Path(self.sources_file) if self.sources_file else None)


def warehouse_for(settings) -> Warehouse:
    """The warehouse client of a profile (CLI, generator, tests)."""
    if settings.profile == "hybrid":
        return PostgresWarehouse(settings.onprem_dsn)
    return DuckDBWarehouse(settings.warehouse_path)
