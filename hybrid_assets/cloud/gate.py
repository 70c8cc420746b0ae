"""The deployment gate as a plain function: may this model version replace production? No Dagster here; the
``churn_model`` asset turns the verdict into its blocking ``churn_model_quality`` check result, and the
deployment promotes only the version the latest passing verdict names."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hybrid_assets.cloud import training

NO_NEW_VERSION = "no new version; production unchanged"


@dataclass
class Verdict:
    passed: bool
    version: str  # the version the deployment may serve after this verdict
    description: str
    metadata: dict = field(default_factory=dict)


def judge(
    version: str,
    auc: float,
    production: dict | None,
    production_auc_same_holdout: float | None,
    auc_floor: float,
    auc_tolerance: float,
) -> Verdict:
    """A new version passes if its holdout AUC reaches the floor and is no worse than production's AUC on
    the same holdout minus the tolerance."""
    problems = []
    if auc < auc_floor:
        problems.append(f"AUC {auc:.4f} is below the floor {auc_floor:g}")
    if production_auc_same_holdout is not None and auc < production_auc_same_holdout - auc_tolerance:
        problems.append(
            f"AUC {auc:.4f} is worse than production {production['version']} "
            f"({production_auc_same_holdout:.4f}) on the same holdout"
        )
    return Verdict(
        passed=not problems,
        version=version,
        description="; ".join(problems) or f"{version}: AUC {auc:.4f} passes",
        metadata={
            "version": version,
            "new_version": True,
            "auc": auc,
            "auc_floor": auc_floor,
            "production_version": (production or {}).get("version", "none"),
            "production_auc_same_holdout": production_auc_same_holdout
            if production_auc_same_holdout is not None
            else -1.0,
        },
    )


def nothing_to_judge(production: dict | None, latest: str | None) -> Verdict:
    """No new version this run: the gate passes explicitly and names what stays in production, so the
    deployment is never ungated and never promotes an older candidate the gate rejected."""
    served = (production or {}).get("version", "none")
    note = ""
    if latest and latest != served:
        note = f" (the latest version {latest} is not in production: the gate did not pass it)"
    return Verdict(
        passed=True,
        version=served,
        description=f"{NO_NEW_VERSION}: {served}{note}",
        metadata={"version": served, "new_version": False, "latest_registered_version": latest or "none"},
    )


def production_auc(registry, production: dict | None, version: str, holdout) -> float | None:
    """Production's AUC rescored on the candidate's holdout (None when there is no other production model)."""
    if not production or production["version"] == version:
        return None
    import lightgbm as lgb

    meta = registry.metadata(production["version"])
    booster = lgb.Booster(model_str=registry.model_text(production["version"]))
    labels = np.asarray(holdout["churned"].to_numpy())
    return training.auc(labels, booster.predict(training.matrix(holdout, meta["features"])))
