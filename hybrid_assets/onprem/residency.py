"""What the on-prem location tells Dagster about a failure: where it happened and what kind of error it was,
never the row values a library may have put in its message.

Dagster stores every step failure (message and stack) in its event log, which in the hybrid deployment is a
cloud database that the UI shows to anyone. So every on-prem step body and the on-prem sensor run inside
:func:`scrubbed`:

- a failure the platform composed itself (``dg.Failure``, ``WarehouseError``, ``ObjectStoreError``) names
  tables, columns, counts, reasons and the service's address only, and passes unchanged;
- any other exception (a database driver's, Polars', GX's) is replaced by an :class:`OnpremStepError` whose
  message is the original one scrubbed of literal values (``core.redaction.scrub``), with its cause
  and context cut off. The unscrubbed message and traceback are kept on-prem, in ``platform.step_errors`` of
  the warehouse, under the error id the scrubbed message gives (``hybrid errors ID`` prints them there).
"""

from __future__ import annotations

import functools
import traceback
import uuid

import dagster as dg

from core.contracts import KNOWN_NAMES
from core.redaction import scrub
from resources.object_store import ObjectStoreError
from resources.warehouse import PLATFORM_SCHEMA, WarehouseError

STEP_ERRORS_TABLE = f"{PLATFORM_SCHEMA}.step_errors"
STEP_ERRORS_DDL = f"""create table if not exists {STEP_ERRORS_TABLE} (
    error_id VARCHAR, run_id VARCHAR, step VARCHAR, error_class VARCHAR, message VARCHAR, traceback VARCHAR,
    detected_at TIMESTAMP)"""
# Composed by the platform from names, counts and reasons (and GX results with PII samples redacted).
TRUSTED = (dg.Failure, dg.RetryRequested, WarehouseError, ObjectStoreError)


class OnpremStepError(Exception):
    """An on-prem step failed with an error whose message was scrubbed of row values before Dagster saw it."""


def scrubbed(fn):
    """Run an on-prem step body (or sensor) so that no row value reaches Dagster through an exception."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TRUSTED as exc:
            _cut_chain(exc, args, kwargs, fn.__name__)
            raise
        except Exception as exc:
            raise _scrubbed_error(exc, args, kwargs, fn.__name__) from None

    return wrapper


def _cut_chain(exc: BaseException, args: tuple, kwargs: dict, name: str) -> None:
    """The platform's own message passes, but not the driver error it was raised from: Dagster would store
    that one too, unscrubbed, as the cause. The whole chain is kept on-prem instead (best effort)."""
    if exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__):
        return
    context = kwargs.get("context") or next((a for a in args if hasattr(a, "log")), None)
    run_id, step = _step_of(context, name)
    _keep_on_prem(kwargs.get("warehouse"), uuid.uuid4().hex[:12], run_id, step, exc)
    exc.__cause__ = None
    exc.__suppress_context__ = True


def _step_of(context, default: str) -> tuple[str | None, str]:
    run = getattr(context, "run", None) if context is not None else None
    try:
        step = context.op_execution_context.op_def.name
    except Exception:  # a sensor context, or a context shape this Dagster version does not have
        step = default
    return (run.run_id if run is not None else None), step


def _scrubbed_error(exc: Exception, args: tuple, kwargs: dict, name: str) -> OnpremStepError:
    context = kwargs.get("context") or next((a for a in args if hasattr(a, "log")), None)
    run_id, step = _step_of(context, name)
    message = scrub(str(exc), KNOWN_NAMES)
    error_id = uuid.uuid4().hex[:12]
    kept = _keep_on_prem(kwargs.get("warehouse"), error_id, run_id, step, exc)
    where = (
        f"the full error is kept on-prem: `hybrid errors {error_id}`"
        if kept
        else "the full error could not be kept on-prem (no warehouse connection)"
    )
    return OnpremStepError(f"{type(exc).__name__} in {step}: {message} [row values redacted; {where}]")


def _keep_on_prem(warehouse, error_id: str, run_id: str | None, step: str, exc: Exception) -> bool:
    """Best effort: the unscrubbed error in the warehouse, next to the data it is about."""
    if warehouse is None:
        return False
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        wh = warehouse.client()
        wh.execute(f"create schema if not exists {PLATFORM_SCHEMA}")
        wh.execute(STEP_ERRORS_DDL)
        wh.execute(
            f"insert into {STEP_ERRORS_TABLE} values (?, ?, ?, ?, ?, ?, current_timestamp)",
            [error_id, run_id or "", step, type(exc).__name__, str(exc), text],
        )
        return True
    except Exception:  # the warehouse itself failed: its own error says so, and carries no row values
        return False
