"""Retraining triggers: PSI itself, and the drift / live-quality sensor on the materialized platform."""

import dagster as dg
import numpy as np
import polars as pl

from core import catalog
from hybrid_assets.cloud import drift
from hybrid_assets.cloud.retraining import evaluate_retraining


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.gamma(2.0, 10.0, 50_000)
    assert drift.psi(reference, rng.gamma(2.0, 10.0, 50_000)) < 0.01
    assert drift.psi(reference, rng.gamma(2.0, 10.0, 50_000) * 1.6) > drift.PSI_THRESHOLD
    counts = rng.poisson(2, 20_000).astype(float)  # few distinct values: tied quantile edges merge
    assert drift.psi(counts, rng.poisson(2, 20_000).astype(float)) < 0.01
    assert drift.psi(counts, rng.poisson(5, 20_000).astype(float)) > drift.PSI_THRESHOLD


def test_decide_names_every_reason():
    ref = pl.DataFrame({"a": np.arange(1000.0), "b": np.arange(1000.0)})
    cur = pl.DataFrame({"a": np.arange(1000.0), "b": np.arange(1000.0) + 800})
    decision = drift.decide(ref, cur, ["a", "b"], live_auc=0.61)
    assert decision.retrain
    assert any("PSI of b" in r for r in decision.reasons) and any(
        "live AUC 0.610" in r for r in decision.reasons
    )
    assert not any("PSI of a" in r for r in decision.reasons)


def test_no_retrain_on_the_platform_as_generated_and_a_run_request_when_thresholds_are_crossed(platform):
    from hybrid_assets.cloud.definitions import defs
    from hybrid_assets.resources import cloud_resources
    from tests.conftest import hybrid_env

    with hybrid_env(platform.home):
        store, registry = platform.object_store(), platform.registry()
        decision, signature = evaluate_retraining(store, registry)
        assert not decision.retrain, decision.summary()
        assert decision.live_auc is not None and decision.live_auc > drift.LIVE_AUC_FLOOR
        key = list(registry.metadata(registry.production()["version"])["feature_importance"])[
            : drift.KEY_FEATURES
        ]
        assert set(decision.psi) == set(key)
        assert signature.startswith(registry.production()["version"])
        strict, _ = evaluate_retraining(store, registry, psi_threshold=1e-6, auc_floor=0.999)
        assert strict.retrain and any("live AUC" in r for r in strict.reasons)

        sensor = defs().get_sensor_def("retrain_on_drift")
        with dg.build_sensor_context(instance=platform.instance, resources=cloud_resources()) as context:
            result = sensor(context)
        assert isinstance(result, dg.SkipReason) and "no retrain needed" in result.skip_message
        assert catalog.TRAINING_SET_KEY in store.list("training/")
