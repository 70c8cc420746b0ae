"""The on-prem warehouse: a DuckDB file (embedded profile) or PostgreSQL (hybrid profile).

Only the ``onprem`` code location is given this resource: the sensitive tables never leave it.
Connections are short-lived, so the sensor, the generator and runs can take turns on one DuckDB file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from pydantic import Field

SOURCE_TABLES = ("customers", "transactions", "support_tickets")
PLATFORM_SCHEMA = "platform"
QUARANTINE_TABLE = f"{PLATFORM_SCHEMA}.quarantine"
QUARANTINE_DDL = f"""create table if not exists {QUARANTINE_TABLE} (
    source_table VARCHAR, row_key VARCHAR, reason VARCHAR, row_json VARCHAR,
    detected_at TIMESTAMP, run_id VARCHAR)"""


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or answered with an error; the message names it."""


class DuckDBWarehouse:
    """On-prem warehouse in one DuckDB file."""

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
                    raise WarehouseError(f"{self.describe()} is not available: {exc}") from exc
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

    def append(self, table: str, frame: pl.DataFrame) -> None:
        with self.connect() as con:
            con.register("__incoming", frame.to_arrow())
            con.execute(f"insert into {table} by name select * from __incoming")
            con.unregister("__incoming")


class WarehouseResource(dg.ConfigurableResource):
    """Connection settings for the on-prem warehouse (a DuckDB file in the embedded profile)."""

    duckdb_path: str = Field(description="Path of the DuckDB file that is the on-prem warehouse.")

    def client(self, read_only: bool = False) -> DuckDBWarehouse:
        return DuckDBWarehouse(self.duckdb_path, read_only=read_only)
