"""Run a GX 1.x suite over a Polars frame and summarise the result for Dagster check metadata."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import polars as pl

from core.redaction import mask, scrub

SAMPLE_SIZE = 5


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed: Any = None
    sample: list = field(default_factory=list)

    def line(self) -> str:
        where = f" on {self.column}" if self.column else ""
        counts = (
            f": {self.unexpected_count} unexpected ({self.unexpected_percent:.2f}%)"
            if self.unexpected_count is not None and self.unexpected_percent is not None
            else (f": observed {self.observed}" if self.observed is not None else "")
        )
        sample = f", e.g. {self.sample}" if self.sample else ""
        return f"{self.expectation}{where}{counts}{sample}"


@dataclass
class SuiteResult:
    suite: str
    rows: int
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def table_markdown(self) -> str:
        lines = ["| expectation | column | result | unexpected | sample |", "|---|---|---|---|---|"]
        for o in self.outcomes:
            unexpected = "" if o.unexpected_count is None else str(o.unexpected_count)
            lines.append(
                f"| {o.expectation} | {o.column or ''} | {'pass' if o.success else 'FAIL'} | {unexpected} "
                f"| {', '.join(map(str, o.sample)) if o.sample else ''} |"
            )
        return "\n".join(lines)

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all {len(self.outcomes)} expectations passed on {self.rows} rows"
        return f"{self.suite}: " + "; ".join(o.line() for o in self.failed)


@lru_cache(maxsize=1)
def _batch_definition():
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    except Exception:  # progress bars are cosmetic; an older config shape must not stop validation
        pass
    asset = context.data_sources.add_pandas("frames").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole_frame")


def ensure_context() -> None:
    """GX 1.x builds suites only inside an active data context; an ephemeral one is made once per process."""
    _batch_definition()


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def _columns(kwargs: dict) -> list[str]:
    return [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)] + list(
        kwargs.get("column_list") or []
    )


def validate(frame: pl.DataFrame, suite, redact: Collection[str] = ()) -> SuiteResult:
    """Validate ``frame`` against a GX ``ExpectationSuite``; never raises on failed expectations.

    Values of the ``redact`` columns (the contracts' PII) never reach the result: an expectation on one of them
    reports counts, and its samples and observed value are masked. GX's own exception messages are scrubbed of
    literal values (core/redaction.py), since the result goes to Dagster's event log."""
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20})
    outcomes = []
    for r in result.results:
        cfg = r.expectation_config
        res = r.result or {}
        sample = list(dict.fromkeys(_clean(v) for v in (res.get("partial_unexpected_list") or [])))[
            :SAMPLE_SIZE
        ]
        secret = [c for c in _columns(cfg.kwargs) if c in redact]
        if r.exception_info and r.exception_info.get("raised_exception"):
            observed = scrub(str(r.exception_info.get("exception_message")), frame.columns)
        else:
            observed = res.get("observed_value")
            if secret and observed is not None:  # an aggregate of a PII column (a min, a most common value)
                observed = mask(secret[0])
        if secret and sample:
            sample = [mask(secret[0])]
        outcomes.append(
            ExpectationOutcome(
                expectation=cfg.type,
                column=cfg.kwargs.get("column"),
                success=bool(r.success),
                unexpected_count=res.get("unexpected_count"),
                unexpected_percent=res.get("unexpected_percent"),
                observed=_clean(observed)
                if not isinstance(observed, list)
                else [_clean(v) for v in observed],
                sample=sample,
            )
        )
    return SuiteResult(suite=suite.name, rows=frame.height, outcomes=outcomes)
