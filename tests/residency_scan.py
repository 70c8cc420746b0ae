"""Shared by the residency tests of both profiles: customers planted with distinctive PII, and scanners that
read every place outside the warehouse as text (Dagster's SQLite or PostgreSQL storage table by table, files
such as compute logs, an object store folder)."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from core.contracts import CUSTOMERS


def planted_customers(wh, tag: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows that the raw gate quarantines, a row it accepts whose e-mail fails the GX contract). Every PII
    value is unique to ``tag``, so finding one anywhere outside the warehouse is a leak."""
    top = int(wh.scalar("select max(customer_id) from customers"))
    existing, signed_up = wh.query(
        "select customer_id, signup_date from customers order by customer_id limit 1"
    ).row(0)
    future = date.today() + timedelta(days=30)

    def person(i: int, customer_id: int, signup: date | None, email: str | None = None) -> dict:
        return {
            "customer_id": customer_id,
            "full_name": f"Zelda{tag}{i} Quux{tag}{i}",
            "email": email or f"zelda.{tag}{i}@leak.example",
            "phone": f"+44 20 7946 {i:02d}{tag[:2]}",
            "birth_date": date(1951, 2, 3 + i),
            "signup_date": signup,
            "region": "north",
            "plan": "basic",
        }

    quarantined = [
        person(1, top + 1, None),  # null signup_date
        person(2, top + 2, future),  # signup_date in the future
        # a later second row for an existing key: a duplicate (of duplicates, the first to arrive is accepted)
        person(3, existing, signed_up + timedelta(days=1)),
    ]
    bad_email = [person(4, top + 3, date(2026, 1, 5), email=f"zelda.{tag}4#leak.example")]
    schema = {
        c: {"BIGINT": pl.Int64, "VARCHAR": pl.String, "DATE": pl.Date}[t]
        for c, t in CUSTOMERS.columns.items()
    }
    return pl.DataFrame(quarantined, schema=schema), pl.DataFrame(bad_email, schema=schema)


def pii_values(frame: pl.DataFrame) -> list[str]:
    """Every PII value of the planted rows, plus the parts of the names (a leak may quote half of one)."""
    values = []
    for row in frame.iter_rows(named=True):
        values += [str(row[c]) for c in CUSTOMERS.pii if row[c] is not None]
        values += row["full_name"].split()
    return values


def delete_planted(wh, frame: pl.DataFrame) -> None:
    emails = frame["email"].to_list()  # the duplicate shares its key with a real customer: match on e-mail
    wh.execute(f"delete from customers where email in ({', '.join('?' for _ in emails)})", emails)


def texts_of(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` as text: SQLite files table by table (Dagster's runs, event logs and
    schedules, Feast's online store), Parquet objects by their decoded values as well as their bytes, the rest
    (compute logs, Feast's registry, telemetry) as raw bytes."""
    texts = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        where = str(path.relative_to(folder))
        with open(path, "rb") as f:
            head = f.read(16)
        if head == b"SQLite format 3\x00":
            texts.update(_sqlite_texts(path, where))
            continue
        texts[where] = parquet_text(path) if head[:4] == b"PAR1" else path.read_bytes().decode("latin-1")
    return texts


def parquet_text(source) -> str:
    """A Parquet file as text: its schema and key-value metadata, and the distinct values of every column
    that could hold a PII value (strings, dates, times, anything not numeric). Compressed pages hide the raw
    bytes, so the values are decoded; numeric columns (the features) cannot hold a name, an e-mail address
    or a phone number, and leaving them out keeps the scan of a whole feature store to seconds."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(source)
    parts = [str(schema), repr(schema.metadata)]
    if hasattr(source, "seek"):
        source.seek(0)
    frame = pl.read_parquet(source)
    for name, dtype in frame.schema.items():
        if not dtype.is_numeric():
            parts.append("\n".join(frame[name].unique().cast(pl.String).drop_nulls().to_list()))
    return "\n".join(parts)


def _sqlite_texts(path: Path, where: str) -> dict[str, str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        return {
            f"{where}:{t}": "\n".join(map(_text, con.execute(f'select * from "{t}"').fetchall()))
            for t in tables
        }
    finally:
        con.close()


def postgres_texts(url: str) -> dict[str, str]:
    """Every table of a PostgreSQL database (Dagster's storage in the hybrid profile), as text."""
    import psycopg

    url = url.replace("postgresql+psycopg2://", "postgresql://")
    texts = {}
    with psycopg.connect(url) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'public' "
                "and table_type = 'BASE TABLE'"
            )
        ]
        for table in tables:
            rows = con.execute(f'select * from "{table}"').fetchall()
            texts[f"postgres:{table}"] = "\n".join(map(_text, rows))
    return texts


def _text(row) -> str:
    return " ".join(bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview) else str(v) for v in row)


def leaks(texts: dict[str, str], values: list[str]) -> dict[str, list[str]]:
    found = {where: [v for v in values if v in text] for where, text in texts.items()}
    return {where: hits for where, hits in found.items() if hits}
