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

Only purchases are required (``transactions``, with a customer id, an event time and an amount). A mapping may
leave ``customers`` or ``support_tickets`` out, and a contract's optional columns (``column: ~``): they then
read as no rows and as nulls, and the features that need them are off for this deployment
(:meth:`Sources.switched_off`; each feature's ``requires`` in core/catalog.py). ``marketing_events: false``
says there are no marketing event files in the object store: the engagement features are off too.
:func:`configured` is this process's mapping (the file the settings name), which the catalog's
``features_of`` / ``feature_names`` follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import yaml

from core.contracts import CONTRACTS, READ_AS, SQL_TYPE, TYPE_FAMILIES, TableContract, type_matches
from core.days import DEFAULT_FIRST_DAY

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
KEYS = {"table", "columns", "pii"}
TOP_KEYS = {"sources", "first_day", "marketing_events"}


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
    # optional contract columns your table does not have (`column: ~`): read as nulls (a key: the row's number)
    absent: tuple[str, ...] = ()
    present: bool = True  # False: the mapping leaves the table out; it reads as no rows

    def has(self, column: str | None = None) -> bool:
        """Is the table mapped (and, with ``column``, that contract column too)?"""
        return self.present and (column is None or column not in self.absent)

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
        fails on its schema check, which names every problem. A column the mapping leaves out reads as a typed
        null, and a table it leaves out as no rows."""
        cols = ", ".join(
            f"{self._read(ours)} as {ours}" for ours in self.contract.columns if not only or ours in only
        )
        if not self.present:
            return f"select {cols} where false"
        return f"select {cols} from {'.'.join(_quote(p) for p in self.table.split('.'))}"

    def _read(self, ours: str) -> str:
        """How the select reads one column: a TIMESTAMP column through a cast, so that a DATE column reads as
        the day's midnight (contracts.READ_AS); on a TIMESTAMP column the cast does nothing, in DuckDB and in
        PostgreSQL (an index on it still serves). A column left out reads as a typed null, except a key: the
        row's number in the order of arrival, then of every mapped column (stable while rows are appended)."""
        logical = self.contract.columns[ours]
        if not self.has(ours):
            if ours == self.contract.key and self.present:
                order = [self.contract.arrival] + [
                    c
                    for c in self.contract.columns
                    if c != self.contract.arrival and self.has(c) and c != ours
                ]
                by = ", ".join(dict.fromkeys(self._read(c) for c in order))
                return f"cast(row_number() over (order by {by}) as bigint)"
            return f"cast(null as {SQL_TYPE[logical]})"
        mine = _quote(self.columns[ours])
        return f"cast({mine} as timestamp)" if logical == "TIMESTAMP" else mine

    def column_problems(self, found: dict[str, str]) -> list[str]:
        """Each way the warehouse table (``found``: column -> SQL type; empty when there is no such table)
        differs from what the contract needs, one line naming the table and the column. Columns the mapping
        does not name are not read, so they are no problem."""
        if not self.present:
            return []
        if not found:
            return [f"{self.table}: table not found in the warehouse"]
        lower = {c.lower(): c for c in found}
        lines = []
        for ours, logical in self.contract.columns.items():
            if ours in self.derived or ours in self.absent:  # derived: the column it is read from is checked
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
    marketing_events: bool = True  # marketing event files land in the object store (the engagement features)

    def __getitem__(self, name: str) -> Source:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.by_name.values())

    @property
    def pii_columns(self) -> frozenset[str]:
        """Every PII column, by the contract's name: none of them may cross to the cloud."""
        return frozenset(c for s in self for c in s.pii)

    def provides(self, requirement: str) -> bool:
        """Does this deployment have ``requirement``: a source (``support_tickets``, ``marketing_events``) or
        a source's column (``customers.plan``)?"""
        table, _, column = requirement.partition(".")
        if table == "marketing_events":
            return self.marketing_events
        return self.by_name[table].has(column or None)

    def switched_off(self, features: Iterable | None = None) -> dict[str, str]:
        """The catalog's features this deployment cannot compute, each with what it lacks (``support_tickets``,
        ``customers.plan``): off everywhere (computation, Feast, GX, training, serving, docs)."""
        from core.catalog import FEATURES

        off = {}
        for f in FEATURES if features is None else features:
            missing = [r for r in f.requires if not self.provides(r)]
            tables = {r for r in missing if "." not in r}  # a table left out: its columns need no mention
            missing = [r for r in missing if r.partition(".")[0] not in tables or "." not in r]
            if missing:
                off[f.name] = ", ".join(missing)
        return off

    @property
    def features(self) -> tuple:
        """The catalog's features this deployment computes (all of them with the generator's tables)."""
        from core.catalog import FEATURES

        off = self.switched_off()
        return tuple(f for f in FEATURES if f.name not in off)


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
    marketing = data.get("marketing_events", True)
    if not isinstance(marketing, bool):
        raise SourcesError(
            f"{where}: marketing_events: {marketing!r}: true (event files land in the object store) or false"
        )
    entries = data["sources"]
    unknown = sorted(set(entries) - set(CONTRACTS))
    if unknown:
        raise SourcesError(
            f"{where}: sources.{unknown[0]}: not a source table of the platform ({', '.join(CONTRACTS)})"
        )
    missing = [name for name, c in CONTRACTS.items() if c.required and entries.get(name, False) is False]
    if missing:
        raise SourcesError(
            f"{where}: sources.{missing[0]}: missing (the platform needs at least a purchases table: "
            "customer id, event time and amount)"
        )
    out = {}
    for name, contract in CONTRACTS.items():
        if name not in entries or entries[name] is False:  # left out: no rows, its features are off
            out[name] = Source(contract, name, {}, contract.pii, present=False)
            continue
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
        derived, absent = {}, []
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
            if mine is None and ours in contract.optional:
                absent.append(ours)  # no such column: nulls (a key: the row's number)
                continue
            if not isinstance(mine, str) or not mine.strip():
                if ours == contract.arrival and contract.arrival_defaults_to:
                    alternative = f" (or ~: no such column, arrival = {contract.arrival_defaults_to})"
                elif contract.optional:
                    alternative = (
                        f" ({ours} is required; only {', '.join(contract.optional)} may be ~: no such column)"
                    )
                else:
                    alternative = f" ({ours} is required)"
                raise SourcesError(
                    f"{at}.columns.{ours}: expected the name of a column of {table}{alternative}"
                )
        columns = {
            c: str(renames.get(c, c)) for c in contract.columns if c not in derived and c not in absent
        }
        doubled = sorted({m for m in columns.values() if list(columns.values()).count(m) > 1})
        if doubled:
            raise SourcesError(f"{at}.columns: {doubled[0]} is mapped to more than one contract column")
        pii = entry.get("pii") or []
        if not isinstance(pii, list) or any(p not in contract.columns for p in pii):
            bad = next((p for p in pii if p not in contract.columns), pii) if isinstance(pii, list) else pii
            raise SourcesError(
                f"{at}.pii: {bad!r} is not a column of the contract ({', '.join(contract.columns)})"
            )
        columns = {  # the contract's order
            c: columns.get(c) or columns[derived[c]] for c in contract.columns if c not in absent
        }
        pii = tuple(dict.fromkeys([*contract.pii, *pii]))  # (a column left out stays PII: it is null)
        out[name] = Source(contract, table, columns, pii, derived, tuple(absent))
    return Sources(out, first_day=first_day, marketing_events=marketing)


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
        stat = Path(path).stat()
    except FileNotFoundError:
        raise SourcesError(f"{path}: no such file (HYBRID_SOURCES)") from None
    return _load(Path(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int, size: int) -> Sources:
    """One parse per version of the file (every ``feature_names()`` asks, see :func:`configured`)."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SourcesError(f"{path}: no such file (HYBRID_SOURCES)") from None
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return replace(parse(data, str(path)), path=path)


def configured() -> Sources:
    """This process's mapping: the file the settings name (HYBRID_SOURCES, default sources.yaml). Read when
    asked, never on import; a changed file is read again."""
    from core.settings import load_settings

    return load(load_settings(apply_env_file=False).sources_file)
