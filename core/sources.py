"""Where the platform finds its source tables in your warehouse: the source mapping, declared once.

The contracts (core/contracts.py) name the platform's source tables and columns: its vocabulary. The mapping
(``sources.yaml`` at the repository root; ``HYBRID_SOURCES`` names another file) says, for each of them, which
table of yours holds it (schema-qualified when it is not in the warehouse's default schema) and which column of
yours holds each of the contract's columns; a column it does not name keeps the contract's name. It may also
mark more columns as PII (the contract's PII columns stay PII: a mapping cannot unmark them). Its
``first_day`` is the first daily partition (default 2026-01-01): the on-prem location's partitions start there.

The raw assets, the on-prem sensor and ``hybrid sources check`` read a source through :func:`relation`: a
``select`` that renames your columns to the contract's. Everything after the raw gate (the accepted rows in the
platform schema, the quarantine, the features) uses the contract's names only. Columns of yours that the
mapping does not name are never read. No Dagster here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

import yaml

from core.contracts import CONTRACTS, READ_AS, TYPE_FAMILIES, TableContract, type_matches
from core.days import DEFAULT_FIRST_DAY

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
KEYS = {"table", "columns", "pii"}
TOP_KEYS = {"sources", "first_day"}


class SourcesError(ValueError):
    """The mapping file is wrong: one line naming the file, the source and the key."""


@dataclass(frozen=True)
class Source:
    """One contract table as it lives in the warehouse."""

    contract: TableContract
    table: str  # the warehouse's table, "table" or "schema.table"
    columns: dict[str, str]  # the contract's column -> the warehouse's column, for every contract column
    pii: tuple[str, ...]  # the contract's names of the columns whose values never leave the warehouse
    # contract columns your table does not have, read from another contract column's (ingested_at -> event_ts)
    derived: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.contract.table

    @property
    def schema_and_table(self) -> tuple[str | None, str]:
        schema, _, table = self.table.rpartition(".")
        return (schema or None), table

    def where(self, column: str) -> str:
        """How a message names a contract column: the warehouse's table and column, and the contract's
        name when yours differs (``sales.orders.amt (amount)``)."""
        mine = self.columns[column]
        return f"{self.table}.{mine}" + (f" ({column})" if mine != column else "")

    def relation(self, *only: str) -> str:
        """A ``select`` of the contract's columns (or ``only`` those), under the contract's names, from the
        warehouse's table: use it where a query would name the table (``from ({relation}) t``). A query that
        needs a few columns names them, so it still runs when another column is missing: the raw asset then
        fails on its schema check, which names every problem."""
        cols = ", ".join(
            f"{self._read(ours, mine)} as {ours}"
            for ours, mine in self.columns.items()
            if not only or ours in only
        )
        return f"select {cols} from {'.'.join(_quote(p) for p in self.table.split('.'))}"

    def _read(self, ours: str, mine: str) -> str:
        """How the select reads one column: a TIMESTAMP column through a cast, so that a DATE column reads as
        the day's midnight (contracts.READ_AS); on a TIMESTAMP column the cast does nothing, in DuckDB and in
        PostgreSQL (an index on it still serves)."""
        if self.contract.columns[ours] == "TIMESTAMP":
            return f"cast({_quote(mine)} as timestamp)"
        return _quote(mine)

    def column_problems(self, found: dict[str, str]) -> list[str]:
        """Each way the warehouse table (``found``: column -> SQL type; empty when there is no such table)
        differs from what the contract needs, one line naming the table and the column. Columns the mapping
        does not name are not read, so they are no problem."""
        if not found:
            return [f"{self.table}: table not found in the warehouse"]
        lower = {c.lower(): c for c in found}
        lines = []
        for ours, logical in self.contract.columns.items():
            if ours in self.derived:  # the column it is read from is checked
                continue
            mine = self.columns[ours]
            kind = found.get(mine)
            if kind is None:
                near = lower.get(mine.lower())
                hint = f"; the table has {near}: names are as the warehouse lists them" if near else ""
                lines.append(f"{self.where(ours)}: column missing (expected {logical}{hint})")
            elif not type_matches(logical, kind):
                also = "".join(f" or {t} (read as midnight)" for t in READ_AS.get(logical, ()))
                lines.append(
                    f"{self.where(ours)}: type {kind}, expected {logical} "
                    f"({' or '.join(TYPE_FAMILIES[logical])}{also})"
                )
        return lines


@dataclass(frozen=True)
class Sources:
    """The mapping of every contract table. ``path`` is the file it came from (None: the contracts' names).
    ``first_day``: the first daily partition, the day the history to load starts (a row that arrives before it
    is in no partition)."""

    by_name: dict[str, Source]
    path: Path | None = None
    first_day: date = DEFAULT_FIRST_DAY

    def __getitem__(self, name: str) -> Source:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.by_name.values())

    @property
    def pii_columns(self) -> frozenset[str]:
        """Every PII column, by the contract's name: none of them may cross to the cloud."""
        return frozenset(c for s in self for c in s.pii)


def _quote(identifier: str) -> str:
    """Double-quoted, so a column may be called ``date`` or ``order`` and keeps its case."""
    return '"' + identifier.replace('"', '""') + '"'


def identity() -> Sources:
    """The contracts' own names: the tables the generator writes."""
    return Sources(
        {name: Source(c, c.table, {col: col for col in c.columns}, c.pii) for name, c in CONTRACTS.items()}
    )


def parse(data: object, where: str = "the mapping") -> Sources:
    """The mapping from its YAML document (already loaded); :class:`SourcesError` names what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
        raise SourcesError(f"{where}: expected a top-level `sources:` with one entry per source table")
    extra = sorted(set(data) - TOP_KEYS)
    if extra:
        raise SourcesError(f"{where}: {extra[0]}: unknown key (allowed: {', '.join(sorted(TOP_KEYS))})")
    first_day = _first_day(data.get("first_day", DEFAULT_FIRST_DAY), where)
    entries = data["sources"]
    unknown = sorted(set(entries) - set(CONTRACTS))
    if unknown:
        raise SourcesError(
            f"{where}: sources.{unknown[0]}: not a source table of the platform ({', '.join(CONTRACTS)})"
        )
    missing = [name for name in CONTRACTS if name not in entries]
    if missing:
        raise SourcesError(f"{where}: sources.{missing[0]}: missing (every source table needs an entry)")
    out = {}
    for name, contract in CONTRACTS.items():
        entry = entries[name] or {}
        at = f"{where}: sources.{name}"
        if not isinstance(entry, dict):
            raise SourcesError(f"{at}: expected keys {', '.join(sorted(KEYS))}")
        extra = sorted(set(entry) - KEYS)
        if extra:
            raise SourcesError(f"{at}.{extra[0]}: unknown key (allowed: {', '.join(sorted(KEYS))})")
        table = str(entry.get("table") or name)
        if not all(_IDENTIFIER.match(p) for p in table.split(".")) or table.count(".") > 1:
            raise SourcesError(f"{at}.table: {table!r} is not a table or schema.table name")
        renames = entry.get("columns") or {}
        if not isinstance(renames, dict):
            raise SourcesError(f"{at}.columns: expected `contract column: your column` pairs")
        derived = {}
        for ours, mine in renames.items():
            if ours not in contract.columns:
                raise SourcesError(
                    f"{at}.columns.{ours}: not a column of the contract ({', '.join(contract.columns)})"
                )
            if mine is None and ours == contract.arrival and contract.arrival_defaults_to:
                derived[ours] = (
                    contract.arrival_defaults_to
                )  # no arrival column: a row arrives when it happens
                continue
            if not isinstance(mine, str) or not mine.strip():
                raise SourcesError(
                    f"{at}.columns.{ours}: expected the name of a column of {table}"
                    + (
                        f" (or ~: no such column, arrival = {contract.arrival_defaults_to})"
                        if ours == contract.arrival and contract.arrival_defaults_to
                        else ""
                    )
                )
        columns = {c: str(renames.get(c, c)) for c in contract.columns if c not in derived}
        doubled = sorted({m for m in columns.values() if list(columns.values()).count(m) > 1})
        if doubled:
            raise SourcesError(f"{at}.columns: {doubled[0]} is mapped to more than one contract column")
        pii = entry.get("pii") or []
        if not isinstance(pii, list) or any(p not in contract.columns for p in pii):
            bad = next((p for p in pii if p not in contract.columns), pii) if isinstance(pii, list) else pii
            raise SourcesError(
                f"{at}.pii: {bad!r} is not a column of the contract ({', '.join(contract.columns)})"
            )
        columns = {c: columns.get(c) or columns[derived[c]] for c in contract.columns}  # the contract's order
        out[name] = Source(contract, table, columns, tuple(dict.fromkeys([*contract.pii, *pii])), derived)
    return Sources(out, first_day=first_day)


def _first_day(value: object, where: str) -> date:
    """``first_day``: a day (YAML reads 1997-01-01 as one; a quoted "1997-01-01" is accepted too), not in the
    future."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            pass
    if not isinstance(value, date) or isinstance(value, datetime):
        raise SourcesError(f"{where}: first_day: {value!r} is not a day (YYYY-MM-DD)")
    if value > date.today():
        raise SourcesError(f"{where}: first_day: {value} is in the future (no partition would exist yet)")
    return value


def load(path: Path | None) -> Sources:
    """The mapping in ``path``; None means the contracts' own names."""
    if path is None:
        return identity()
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise SourcesError(f"{path}: no such file (HYBRID_SOURCES)") from None
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return replace(parse(data, str(path)), path=Path(path))
