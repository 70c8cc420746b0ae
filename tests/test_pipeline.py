"""A full in-process materialization of both locations on a temporary HYBRID_HOME (the session fixture)."""

import polars as pl

from resources.warehouse import QUARANTINE_TABLE

ONPREM_ASSETS = {
    "customers",
    "transactions",
    "support_tickets",
    "customer_features",
    "churn_labels",
    "customer_feature_export",
    "churn_label_export",
}
CLOUD_ASSETS = {
    "marketing_events",
    "feature_registry",
    "marketing_engagement",
    "online_features",
    "offline_features",
    "training_set",
    "churn_model",
    "churn_model_deployment",
}


def test_every_asset_materialized(platform):
    assert set(platform.onprem.materialized) == ONPREM_ASSETS
    assert set(platform.cloud.materialized) == CLOUD_ASSETS


def test_every_check_ran_and_none_blocked(platform):
    checks = platform.onprem.checks + platform.cloud.checks
    assert len(checks) == 12
    assert not [c for c in checks if c.status == "FAIL"]


def test_generated_broken_rows_are_quarantined_with_a_warning(platform):
    """The generator writes ~0.05% broken transactions: quarantined with reasons, a WARN, and the run goes on."""
    check = next(c for c in platform.onprem.checks if c.check == "transactions_contract")
    assert check.status == "WARN"
    assert "quarantined" in check.description
    quarantine = platform.warehouse().query(
        f"select * from {QUARANTINE_TABLE} where source_table = 'transactions'"
    )
    reasons = set(quarantine["reason"])
    assert {
        "null or negative amount",
        "duplicate key",
        "unknown customer_id",
        "event_ts in the future",
    } <= reasons
    meta = platform.onprem.materialized["transactions"]
    assert meta["rows_quarantined"] == quarantine.height
    assert meta["rows_read"] == meta["dagster/row_count"] + quarantine.height
    # nothing lost: every source row is either accepted or quarantined
    source = platform.warehouse().query("select count(*) as n from transactions")["n"][0]
    assert source == meta["rows_read"]


def test_export_has_no_pii_and_only_catalog_columns(platform):
    from core import catalog

    export = platform.object_store().read_parquet(catalog.ACTIVITY_EXPORT_KEY)
    assert export.columns == [
        catalog.ENTITY_KEY,
        catalog.EVENT_TS,
        *catalog.feature_names(catalog.ACTIVITY_VIEW),
    ]
    customers = platform.warehouse().query("select full_name, email, phone from customers limit 200")
    text = export.head(5000).write_csv()
    for value in customers["email"].to_list() + customers["phone"].to_list():
        assert value not in text


def test_production_model_is_deployed_with_metadata(platform):
    registry = platform.registry()
    production = registry.production()
    assert production["version"] == platform.cloud.materialized["churn_model"]["version"]
    meta = registry.metadata(production["version"])
    assert meta["feature_service"] == "churn_prediction"
    assert set(meta["metrics"]) >= {"auc", "log_loss", "brier", "calibration", "expected_calibration_error"}
    assert meta["training_window"]["holdout_snapshots"]
    assert len(meta["checksum_sha256"]) == 64
    assert sum(meta["feature_importance"].values()) > 0.99


def test_rerun_without_new_data_keeps_the_model_version(platform):
    """Retraining policy: same labelled snapshots -> no new version, deployment untouched. The training set
    is not rebuilt (same inputs), and the blocking model gate still gives its verdict: nothing to deploy."""
    from core import catalog

    before = platform.registry().versions()
    production = platform.registry().production()
    training_set = platform.object_store().checksum(catalog.TRAINING_SET_KEY)
    outcome = platform.run("cloud")
    assert outcome.success
    assert "churn_model" not in outcome.materialized
    assert platform.registry().versions() == before
    assert outcome.materialized["training_set"]["rebuilt"] is False
    assert platform.object_store().checksum(catalog.TRAINING_SET_KEY) == training_set
    gate = next(c for c in outcome.checks if c.check == "churn_model_quality")
    assert gate.status == "PASS"
    assert gate.description.startswith(f"no new version; production unchanged: {production['version']}")
    assert platform.registry().production() == production


def test_training_set_is_complete(platform):
    from core import catalog

    frame = platform.object_store().read_parquet(catalog.TRAINING_SET_KEY)
    labels = platform.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)
    assert frame.height == labels.height
    assert frame.select(catalog.feature_names()).null_count().sum_horizontal()[0] == 0
    assert pl.Series(frame["churned"]).n_unique() == 2
