"""What on-prem code may tell the orchestrator: keys, counts and reasons, never the values of PII columns.

Everything an on-prem step hands to Dagster (check metadata and descriptions, GX failure samples, log lines,
exception messages) ends up in Dagster's event log, which in the hybrid deployment lives in the cloud. This
module is the one place that decides what such text may carry:

- ``redact_row`` masks a row's PII columns (``<redacted: email>``), keeping its key and other columns;
- ``scrub`` removes the literal values from a message whose wording the platform does not control (a
  database driver's, Polars', GX's): quoted strings, e-mail addresses, dates and times, phone-like digit
  groups, PostgreSQL's ``Key (col)=(value)`` details and printed tables. Names the platform knows (tables,
  columns, types) are kept, so the message still says where the problem is.

No Dagster here: the resources, the expectations and the code locations all use it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

REDACTED = "<redacted>"
MAX_MESSAGE_CHARS = 2000


def mask(column: str) -> str:
    """What stands in for a PII column's value."""
    return f"<redacted: {column}>"


def redact_row(row: Mapping[str, Any], pii: Collection[str]) -> dict[str, Any]:
    """The row with every PII column's value masked (a null stays null: that it is missing is no secret)."""
    return {k: (mask(k) if k in pii and v is not None else v) for k, v in row.items()}


# Type names that error messages quote; safe to keep, and they say what went wrong.
TYPE_NAMES = frozenset(
    {
        "str",
        "int",
        "float",
        "bool",
        "i8",
        "i16",
        "i32",
        "i64",
        "u8",
        "u16",
        "u32",
        "u64",
        "f32",
        "f64",
        "date",
        "datetime",
        "decimal",
        "string",
        "utf8",
        "varchar",
        "bigint",
        "integer",
        "int64",
        "int32",
        "double",
        "timestamp",
        "numeric",
        "text",
        "boolean",
        "null",
    }
)

_TABLE_LINE = re.compile(r"[│┆┌┐└┘├┤┬┴┼╞╡╪═─]")
_QUOTED = re.compile(r"""(['"`])((?:(?!\1).){0,500}?)\1""", re.DOTALL)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_KEY_DETAIL = re.compile(r"\)=\([^)]*\)")
_DATETIME = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_DIGIT_GROUPS = re.compile(r"\+?\(?\d[\d().\s/-]{5,}\d")


def scrub(text: str, keep: Collection[str] = ()) -> str:
    """``text`` without the literal values it may quote. ``keep`` are names (tables, columns) that may stay
    even when quoted; known type names stay too. Over-masking is the safe side: a masked column name costs a
    moment of reading, a leaked value cannot be taken back."""
    known = {k.lower() for k in keep} | TYPE_NAMES
    lines, table = [], False
    for line in str(text).splitlines():
        if _TABLE_LINE.search(line):  # a printed frame: its cells are row values
            if not table:
                lines.append("<printed table redacted>")
            table = True
            continue
        table = False
        lines.append(line)
    out = "\n".join(lines)
    out = _KEY_DETAIL.sub(f")=({REDACTED})", out)
    out = _QUOTED.sub(lambda m: m.group(0) if m.group(2).lower() in known else REDACTED, out)
    out = _EMAIL.sub(REDACTED, out)
    out = _DATETIME.sub(REDACTED, out)
    out = _DIGIT_GROUPS.sub(REDACTED, out)
    if len(out) > MAX_MESSAGE_CHARS:
        out = out[:MAX_MESSAGE_CHARS] + " ..."
    return out
