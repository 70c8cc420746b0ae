"""`hybrid sources check` and `hybrid import`: what a team needs before its own data runs through the graph.

`sources check` connects to the warehouse of the active profile and checks each source table of
core/contracts.py where the source mapping (sources.yaml, or the file HYBRID_SOURCES names; core/sources.py)
says it is: does the table exist, does it have every column the mapping names, each of the contract's type.
Each problem is one line naming the table and the column (the raw assets fail on the same lines). Columns the
mapping does not name are listed as not read. Nothing runs, nothing is written.

`import` loads a CSV or Parquet file into a warehouse table, in one transaction: readers see the table as it
was or with every row of the file. A file for one of the source tables is cast to the contract's types (a CSV
has no DECIMAL or TIMESTAMP of its own), so that the check and the raw assets accept it.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from core.contracts import CONTRACTS, read_by_cast
from core.sources import Sources
from hybrid_assets.onprem.rows import before_first_day_message, rows_before_first_day

IMPORT_MODES = ("create", "replace", "append")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_POLARS_TYPE = {
    "BIGINT": pl.Int64(),
    "VARCHAR": pl.String(),
    "DATE": pl.Date(),
    "TIMESTAMP": pl.Datetime("us"),
    "DECIMAL": pl.Decimal(12, 2),
}


class SourceFileError(ValueError):
    """The file, the table name or the mode is wrong: one line that says which and why."""


def check(wh, sources: Sources) -> tuple[list[str], list[str]]:
    """(problems, what is fine) for every source table of the mapping ``sources``, against warehouse ``wh``."""
    problems, fine = [], []
    for source in sources:
        if not source.has():
            fine.append(f"{source.name}: not in the mapping, read as no rows")
            continue
        schema, table = source.schema_and_table
        found = wh.columns(table, schema)
        lines = source.column_problems(found)
        if lines:
            problems += lines
            continue
        rows = wh.scalar(f"select count(*) from ({source.relation()}) t")
        where = source.table if source.table == source.name else f"{source.table} ({source.name})"
        unread = [c for c in found if c not in source.columns.values()]
        derived = [f"{ours} = {base} ({source.columns[base]})" for ours, base in source.derived.items()]
        dates = [
            source.where(ours)
            for ours, logical in source.contract.columns.items()
            if ours in source.columns
            and ours not in source.derived
            and read_by_cast(logical, found[source.columns[ours]])
        ]
        early = ""
        if source.contract.partition_column:
            count, earliest = rows_before_first_day(wh, source, sources.first_day)
            if count:
                early = "; " + before_first_day_message(source, count, sources.first_day, earliest)
        fine.append(
            f"{where}: {len(source.columns) - len(derived)} columns as the contract says, {rows} rows"
            + early
            + (f"; no arrival column, so {', '.join(derived)}" if derived else "")
            + (f"; left out: {', '.join(source.absent)}" if source.absent else "")
            + (f"; dates read as midnight: {', '.join(dates)}" if dates else "")
            + (f"; not read: {', '.join(unread)}" if unread else "")
        )
    return problems, fine


def feature_lines(sources: Sources) -> list[str]:
    """What will run: how many of the catalog's features this mapping computes, and each one that is off with
    what it lacks."""
    from core.catalog import FEATURES

    off = sources.switched_off()
    lines = [f"features: {len(FEATURES) - len(off)} of {len(FEATURES)} on"]
    lines += [f"off  {name}: needs {needs}" for name, needs in off.items()]
    return lines


def read_file(path: Path, table: str) -> pl.DataFrame:
    """The file's rows; for a source table, with the contract's columns cast to the contract's types."""
    if not path.is_file():
        raise SourceFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    contract = CONTRACTS.get(table)
    try:
        if suffix == ".csv":
            # a DECIMAL column is read as text and converted exactly (through a float, 12.34 could be 12.33)
            header = pl.read_csv(path, n_rows=0).columns
            exact = {
                c: pl.String
                for c, t in (contract.columns.items() if contract else ())
                if t == "DECIMAL" and c in header
            }
            frame = pl.read_csv(
                path, try_parse_dates=True, infer_schema_length=10_000, schema_overrides=exact
            )
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        else:
            raise SourceFileError(f"{path}: not a .csv or .parquet file")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SourceFileError(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from None
    if frame.width == 0:
        raise SourceFileError(f"{path}: no columns")
    if contract is None:
        return frame
    casts = []
    for column, logical in contract.columns.items():
        if column in frame.columns:
            casts.append(pl.col(column).cast(_POLARS_TYPE[logical], strict=True))
    try:
        return frame.with_columns(casts)
    except pl.exceptions.PolarsError as exc:
        raise SourceFileError(
            f"{path}: a column does not convert to the type of {table}'s contract "
            f"({str(exc).splitlines()[0]}); `hybrid sources check` after the import names the table's problems"
        ) from None


def import_file(wh, table: str, path: Path, mode: str) -> int:
    """Load ``path`` into ``table`` (``mode``: create a new table, replace it, or append to it); the row count."""
    if not _NAME.match(table):
        raise SourceFileError(
            f"{table!r} is not a table name (letters, digits and _, not starting with a digit)"
        )
    if mode not in IMPORT_MODES:
        raise SourceFileError(f"mode {mode!r}: one of {', '.join(IMPORT_MODES)}")
    frame = read_file(path, table)
    have = wh.columns(table)  # empty: no such table
    if mode == "create" and have:
        raise SourceFileError(f"table {table} already exists: --replace it or --append to it")
    if mode == "append" and not have:
        raise SourceFileError(f"table {table} does not exist: import without --append to create it")
    if mode == "append":
        extra = [c for c in frame.columns if c not in have]
        if extra:
            raise SourceFileError(f"{path}: column(s) {', '.join(extra)} not in table {table}")
        wh.append(table, frame)
    else:
        wh.replace_tables({table: frame})
    return frame.height


def cdnow() -> pl.DataFrame:
    """CDNOW's purchases (Fader & Hardie 2001: 69,659 purchases of CDs by 23,570 customers, 1997-01 to
    1998-06), from the copy the ``lifetimes`` package ships. Read through the installed distribution's files,
    without importing ``lifetimes`` (its datasets module needs pkg_resources). Its own columns: customer_id,
    date (a day), number_of_cds, dollar_value (cents exact, as DECIMAL)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("lifetimes")
    except PackageNotFoundError:
        raise SourceFileError(
            "the lifetimes package, which ships CDNOW, is not installed (`make env`)"
        ) from None
    path = next(Path(str(dist.locate_file(f))) for f in dist.files or () if f.name == "CDNOW_master.txt")
    rows = [line.split() for line in path.read_text().splitlines()[1:] if line.strip()]
    return pl.DataFrame(
        {
            "customer_id": [int(r[0]) for r in rows],
            "date": [r[1] for r in rows],
            "number_of_cds": [int(r[2]) for r in rows],
            "dollar_value": [r[3] for r in rows],
        }
    ).with_columns(
        pl.col("date").str.to_date("%Y%m%d"),
        pl.col("dollar_value").str.to_decimal(scale=2).cast(pl.Decimal(12, 2)),
    )
