"""Turn a GX suite result (plus the platform's own gates) into a Dagster check result people can read."""

from collections.abc import Callable

import dagster as dg

from core import catalog
from expectations.runner import SuiteResult, validate
from hybrid_assets.defaults import WITH_ITS_ASSET
from resources.object_store import ObjectStoreResource


class QualityPolicy(dg.ConfigurableResource):
    """Thresholds of the gates: how many bad raw rows a batch may have, and what a model must score."""

    max_invalid_share: float = 0.01
    auc_floor: float = 0.70
    auc_tolerance: float = 0.01


class LabelPolicy(dg.ConfigurableResource):
    """What a churn label means (HYBRID_LABEL_HORIZON_DAYS, HYBRID_ACTIVE_DAYS, HYBRID_SNAPSHOT_EVERY_DAYS):
    the on-prem location computes the labels with it, the cloud location holds out by its horizon. Both sites
    must have the same values; the model's metadata records the definition it was trained on."""

    horizon_days: int = catalog.LABEL_HORIZON_DAYS
    active_days: int = catalog.ACTIVE_DAYS
    every_days: int = catalog.SNAPSHOT_EVERY_DAYS

    def definition(self) -> catalog.LabelDefinition:
        return catalog.LabelDefinition(self.horizon_days, self.active_days, self.every_days)


def gx_check_result(
    result: SuiteResult,
    *,
    errors: list[str] | None = None,
    warnings: list[str] | None = None,
    metadata: dict | None = None,
) -> dg.AssetCheckResult:
    """Passed only if every expectation passed and no error was raised; warnings make a non-blocking WARN."""
    problems = [o.line() for o in result.failed] + list(errors or [])
    warnings = list(warnings or [])
    meta = {
        "rows_validated": result.rows,
        "expectations": dg.MetadataValue.md(result.table_markdown()),
        "expectations_passed": sum(o.success for o in result.outcomes),
        "expectations_failed": len(result.failed),
        **(metadata or {}),
    }
    if problems:
        meta["failures"] = dg.MetadataValue.md("\n".join(f"- {p}" for p in problems))
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=meta,
            description=f"{result.suite}: " + "; ".join(problems),
        )
    if warnings:
        meta["warnings"] = dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings))
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=meta,
            description=f"{result.suite}: " + "; ".join(warnings),
        )
    return dg.AssetCheckResult(passed=True, metadata=meta, description=result.summary())


def parquet_check(
    asset: str, key: str, suite_fn, description: str, switched_off: Callable[[], str | None] = lambda: None
) -> dg.AssetChecksDefinition:
    """A blocking check that runs a GX suite on an object (or a folder of daily objects) in the object store.
    When ``switched_off`` gives a reason (the source mapping switched the asset's features off), there is
    nothing to check: it passes and says why."""

    @dg.asset_check(
        asset=asset,
        name=f"{asset}_contract",
        blocking=True,
        description=description,
        automation_condition=WITH_ITS_ASSET,
    )
    def _check(object_store: ObjectStoreResource) -> dg.AssetCheckResult:
        off = switched_off()
        if off:
            return dg.AssetCheckResult(passed=True, description=off, metadata={"switched_off": True})
        return gx_check_result(validate(object_store.client().read_parquet(key), suite_fn()))

    return _check
