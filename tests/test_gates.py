"""The gates: bad data stops the graph, keeps the last good outputs, and says exactly what is wrong.

One platform for the module; each test leaves the source tables as it found them.
"""

import hashlib
from datetime import datetime, timedelta

import polars as pl
import pytest

from core import catalog
from resources.warehouse import QUARANTINE_TABLE
from tests.conftest import SHORT_DAYS, SHORT_LABELS, build_platform, hybrid_env

DOWNSTREAM_OF_TRANSACTIONS = {
    "customer_features",
    "churn_labels",
    "customer_feature_export",
    "churn_label_export",
}


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    return build_platform(tmp_path_factory.mktemp("gated"), customers=3000, days=SHORT_DAYS, env=SHORT_LABELS)


def _online(platform, ids):
    from resources.feature_store import open_feature_store

    store = open_feature_store(platform.home, "embedded")
    return store.get_online_features(
        features=store.get_feature_service(catalog.FEATURE_SERVICE),
        entity_rows=[{"customer_id": i} for i in ids],
    ).to_dict()


def _digest(platform, key):
    """One digest of an object, or of every object under a folder key (the daily export)."""
    store = platform.object_store()
    keys = store.list(key) if key.endswith("/") else [key]
    return hashlib.sha256(b"".join(store.get_bytes(k) for k in keys)).hexdigest()


def _bad_rows(wh, n: int, **override) -> pl.DataFrame:
    base = wh.query(f"select * from transactions order by transaction_id limit {n}")
    top = wh.scalar("select max(transaction_id) from transactions")
    frame = base.with_columns(transaction_id=pl.int_range(top + 1, top + 1 + n, dtype=pl.Int64))
    return frame.with_columns(**{k: pl.lit(v).cast(frame.schema[k]) for k, v in override.items()})


def test_corrupt_rows_block_downstream_and_keep_the_last_good_outputs(gated):
    wh = gated.warehouse()
    ids = (
        gated.object_store()
        .read_parquet(catalog.LABELS_EXPORT_KEY)["customer_id"]
        .unique()
        .head(10)
        .to_list()
    )
    before = {
        "export": _digest(gated, catalog.ACTIVITY_EXPORT_KEY),
        "features": wh.query("select * from platform.customer_features"),
        "online": _online(gated, ids),
        "production": gated.registry().production(),
    }
    rows = wh.scalar("select count(*) from transactions")
    bad = _bad_rows(wh, int(rows * 0.03), amount=-12.5)
    wh.append("transactions", bad)
    try:
        outcome = gated.run("onprem")
        assert not outcome.success
        check = next(c for c in outcome.checks if c.check == "transactions_contract")
        assert check.status == "FAIL"
        assert "rows quarantined" in check.description and "limit 1.00%" in check.description
        assert "null or negative amount" in check.description
        assert not DOWNSTREAM_OF_TRANSACTIONS & set(outcome.materialized)
        # last good outputs untouched
        assert _digest(gated, catalog.ACTIVITY_EXPORT_KEY) == before["export"]
        assert wh.query("select * from platform.customer_features").equals(before["features"])
        assert _online(gated, ids) == before["online"]
        assert gated.registry().production() == before["production"]
        # the bad rows are kept for inspection, each with its reason
        quarantined = wh.query(
            f"select row_key, reason from {QUARANTINE_TABLE} where source_table = 'transactions' "
            "and reason = 'null or negative amount'"
        )
        assert {str(i) for i in bad["transaction_id"]} <= set(quarantined["row_key"])
    finally:
        wh.execute("delete from transactions where transaction_id >= ?", [int(bad["transaction_id"].min())])


def test_failed_expectation_is_named_with_counts_and_samples(gated):
    wh = gated.warehouse()
    bad = _bad_rows(
        wh, 3, category="weapons"
    )  # a valid row otherwise: passes quarantine, fails the GX value set
    wh.append("transactions", bad)
    try:
        outcome = gated.run("onprem")
        check = next(c for c in outcome.checks if c.check == "transactions_contract")
        assert check.status == "FAIL"
        assert "expect_column_values_to_be_in_set on category: 3 unexpected" in check.description
        assert "weapons" in check.description
        assert "customer_features" not in outcome.materialized
    finally:
        wh.execute("delete from transactions where transaction_id >= ?", [int(bad["transaction_id"].min())])


def test_schema_change_fails_naming_the_column(gated):
    wh = gated.warehouse()
    wh.execute("alter table transactions rename column amount to amount_usd")
    try:
        outcome = gated.run("onprem")
        assert not outcome.success
        failure = " ".join(outcome.step_failures)
        assert "transactions.amount: column missing (expected DECIMAL)" in failure
        assert "amount_usd" not in failure, "a column the mapping does not name is not read: no problem"
        assert not outcome.materialized.keys() & ({"transactions"} | DOWNSTREAM_OF_TRANSACTIONS)
    finally:
        wh.execute("alter table transactions rename column amount_usd to amount")


def test_a_future_arrival_time_is_quarantined_and_moves_nothing(gated):
    """Five rows whose loader's clock is a year ahead: quarantined with their reason, every source row is
    accepted or quarantined, and the day range, the sensor's watermark, the features and the served values
    stay as they were."""
    from core.sources import identity
    from hybrid_assets.onprem.arrivals import arrival_days, read_watermarks

    wh, sources = gated.warehouse(), identity()
    ids = (
        gated.object_store()
        .read_parquet(catalog.LABELS_EXPORT_KEY)["customer_id"]
        .unique()
        .head(10)
        .to_list()
    )
    before = {
        "days": arrival_days(wh, sources),
        "watermark": read_watermarks(wh, sources)["transactions"][0],
        "export": _digest(gated, catalog.ACTIVITY_EXPORT_KEY),
        "online": _online(gated, ids),
        "production": gated.registry().production(),
    }
    late = datetime.now().replace(microsecond=0) + timedelta(days=400)
    bad = _bad_rows(wh, 5, ingested_at=late)
    wh.append("transactions", bad)
    try:
        assert arrival_days(wh, sources) == before["days"]
        assert read_watermarks(wh, sources)["transactions"][0] == before["watermark"]
        outcome = gated.run("onprem")
        assert outcome.success, outcome.step_failures + [c.description for c in outcome.blocking_failures]
        check = next(c for c in outcome.checks if c.check == "transactions_contract")
        assert check.status == "WARN" and "ingested_at in the future" in check.description
        quarantined = wh.query(
            f"select row_key, partition_key from {QUARANTINE_TABLE} where source_table = 'transactions' "
            "and reason = 'ingested_at in the future'"
        )
        assert set(quarantined["row_key"]) == {str(i) for i in bad["transaction_id"]}
        assert set(quarantined["partition_key"]) == {""}  # no day owns them: every run rewrites them
        # nothing lost: every source row is accepted or quarantined
        source = wh.scalar("select count(*) from transactions")
        accepted = wh.scalar("select count(*) from platform.transactions")
        held = wh.scalar(f"select count(*) from {QUARANTINE_TABLE} where source_table = 'transactions'")
        assert source == accepted + held
        assert outcome.materialized["transactions"]["rows_before_first_day"] == 0
        assert _digest(gated, catalog.ACTIVITY_EXPORT_KEY) == before["export"]  # no new snapshot days
        assert gated.run("cloud").success
        assert _online(gated, ids) == before["online"]  # the served features and model are unchanged
        assert gated.registry().production() == before["production"]
    finally:
        wh.execute("delete from transactions where transaction_id >= ?", [int(bad["transaction_id"].min())])


def test_a_corrupted_online_store_is_named_set_aside_and_rebuilt_by_the_next_run(gated):
    from resources.feature_store import online_store_path

    path = online_store_path(gated.home)
    ids = (
        gated.object_store()
        .read_parquet(catalog.LABELS_EXPORT_KEY)["customer_id"]
        .unique()
        .head(10)
        .to_list()
    )
    before = _online(gated, ids)
    with open(path, "r+b") as f:  # its header overwritten: "file is not a database"
        f.write(b"not a database any more" * 4)
    outcome = gated.run("cloud")
    assert outcome.success, outcome.step_failures
    aside = list(path.parent.glob("online_store.db.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"not a database")  # kept for inspection
    assert outcome.materialized["online_features"]["full_reload"] is True
    assert _online(gated, ids) == before


def test_model_gate_blocks_a_worse_model(gated):
    """A new model that fails the quality gate is registered for inspection but never deployed."""
    production = gated.registry().production()
    gated.generator().append(days=7)  # a new labelled snapshot: the retraining policy trains a new version
    assert gated.run("onprem").success
    with hybrid_env(gated.home, **gated.env, HYBRID_AUC_FLOOR="0.999"):
        from hybrid_cli.platform import run_location

        outcome = run_location("cloud", gated.instance)
    assert not outcome.success
    gate = next(c for c in outcome.checks if c.check == "churn_model_quality")
    assert gate.status == "FAIL" and "below the floor 0.999" in gate.description
    assert "churn_model" in outcome.materialized and "churn_model_deployment" not in outcome.materialized
    assert outcome.materialized["churn_model"]["version"] != production["version"]
    assert gated.registry().production() == production
    # online features did move on: they do not depend on the model
    assert "online_features" in outcome.materialized
    assert datetime.fromisoformat(
        outcome.materialized["online_features"]["latest_feature_timestamp"]
    ) > datetime(2026, 4, 1) + timedelta(days=SHORT_DAYS)  # the generator's first day + the history
    # the next run has no new data: the gate still answers, and the rejected version is never promoted
    rerun = gated.run("cloud")
    assert rerun.success, rerun.step_failures
    verdict = next(c for c in rerun.checks if c.check == "churn_model_quality")
    assert verdict.status == "PASS" and verdict.description.startswith("no new version; production unchanged")
    assert outcome.materialized["churn_model"]["version"] in verdict.description  # named as not deployed
    assert gated.registry().production() == production
