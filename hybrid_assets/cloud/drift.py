"""When to retrain: feature drift (population stability index) and the production model's live quality.

Reference: the rows the production model was trained on (its training window in the training set).
Current: the freshest feature snapshot, the one the endpoint serves. Live quality: the production model's
AUC on the newest labelled snapshot, which it has not seen when it was trained.

PSI per feature = sum over bins of (cur - ref) * ln(cur / ref), bins from the reference's deciles. The usual
reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift. We retrain above ``PSI_THRESHOLD`` on any
of the key features (the model's most important ones), or when live AUC falls below ``LIVE_AUC_FLOOR``.
Pure functions; the sensor in sensors.py does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

PSI_THRESHOLD = 0.25
LIVE_AUC_FLOOR = 0.70
KEY_FEATURES = 5  # the production model's top features by gain
BINS = 10
_EPS = 1e-4


def psi(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float:
    """Population stability index of ``current`` against ``reference`` (quantile bins of the reference;
    repeated edges merge, so a feature with few distinct values gets fewer bins)."""
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    cur = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    ref = np.clip(ref / ref.sum(), _EPS, None)
    cur = np.clip(cur / cur.sum(), _EPS, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@dataclass
class RetrainDecision:
    retrain: bool
    reasons: list[str] = field(default_factory=list)
    psi: dict[str, float] = field(default_factory=dict)
    live_auc: float | None = None

    def summary(self) -> str:
        worst = max(self.psi.items(), key=lambda kv: kv[1], default=("-", 0.0))
        auc = f"{self.live_auc:.3f}" if self.live_auc is not None else "n/a"
        head = "retrain: " + "; ".join(self.reasons) if self.retrain else "no retrain needed"
        return f"{head} (largest PSI {worst[0]}={worst[1]:.3f}, live AUC {auc})"


def decide(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    key_features: list[str],
    live_auc: float | None,
    psi_threshold: float = PSI_THRESHOLD,
    auc_floor: float = LIVE_AUC_FLOOR,
) -> RetrainDecision:
    scores = {
        f: psi(reference[f].cast(pl.Float64).to_numpy(), current[f].cast(pl.Float64).to_numpy())
        for f in key_features
    }
    reasons = [f"PSI of {f} is {v:.3f} > {psi_threshold}" for f, v in scores.items() if v > psi_threshold]
    if live_auc is not None and live_auc < auc_floor:
        reasons.append(f"live AUC {live_auc:.3f} < {auc_floor}")
    return RetrainDecision(bool(reasons), reasons, scores, live_auc)
