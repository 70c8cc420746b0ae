"""Point-in-time correctness: no training row sees data from after its snapshot."""

from datetime import timedelta

import polars as pl

from core import catalog


def _training(platform) -> pl.DataFrame:
    return platform.object_store().read_parquet(catalog.TRAINING_SET_KEY)


def test_training_rows_equal_a_recomputation_from_rows_before_the_snapshot(platform):
    train = _training(platform).sample(300, seed=1)
    wh = platform.warehouse()
    txns = wh.query(
        "select customer_id, cast(amount as double precision) amount, event_ts, ingested_at "
        "from platform.transactions"
    )
    tickets = wh.query("select customer_id, opened_ts, resolved_ts from platform.support_tickets")
    for row in train.iter_rows(named=True):
        snap, cid = row[catalog.EVENT_TS], row[catalog.ENTITY_KEY]
        # what the platform knew at the snapshot: rows that happened and had arrived before it
        mine = txns.filter(
            (pl.col("customer_id") == cid) & (pl.col("event_ts") < snap) & (pl.col("ingested_at") < snap)
        )
        last30 = mine.filter(pl.col("event_ts") >= snap - timedelta(days=30))
        assert row["txn_count_30d"] == last30.height
        assert abs(row["spend_30d"] - last30["amount"].sum()) < 1e-6
        if mine.height:
            assert (
                abs(row["days_since_last_txn"] - (snap - mine["event_ts"].max()).total_seconds() / 86400)
                < 1e-6
            )
        tix = tickets.filter((pl.col("customer_id") == cid) & (pl.col("opened_ts") < snap))
        assert row["tickets_60d"] == tix.filter(pl.col("opened_ts") >= snap - timedelta(days=60)).height
        still_open = tix.filter(pl.col("resolved_ts").is_null() | (pl.col("resolved_ts") >= snap)).height
        assert row["open_tickets"] == still_open


def test_feast_joins_the_row_of_the_snapshot_not_a_later_one(platform):
    """Each training row carries exactly the exported feature row stamped at its snapshot."""
    train = _training(platform)
    export = platform.object_store().read_parquet(catalog.ACTIVITY_EXPORT_KEY)
    names = catalog.feature_names(catalog.ACTIVITY_VIEW)
    joined = train.join(export, on=[catalog.ENTITY_KEY, catalog.EVENT_TS], how="left", suffix="_export")
    for name in names:
        assert (joined[name] == joined[f"{name}_export"]).all(), name
    # and the export has newer rows than many training snapshots, which Feast must not have used
    assert export[catalog.EVENT_TS].max() > train[catalog.EVENT_TS].max()


def test_rows_after_a_snapshot_do_not_change_its_features():
    """Unit check of the engine: appending future rows leaves an earlier snapshot's features unchanged."""
    from datetime import datetime

    as_of = datetime(2026, 6, 1)
    spine = pl.DataFrame({"customer_id": [1, 2], "as_of": [as_of, as_of]})
    txns = pl.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "amount": [10.0, 20.0, 5.0],
            "category": ["a", "b", "a"],
            "channel": ["online", "store", "app"],
            "event_ts": [datetime(2026, 5, 20), datetime(2026, 5, 31, 23), datetime(2026, 4, 1)],
        }
    )
    future = pl.DataFrame(
        {
            "customer_id": [1, 2],
            "amount": [999.0, 999.0],
            "category": ["z", "z"],
            "channel": ["online", "online"],
            "event_ts": [as_of, datetime(2026, 6, 2)],  # at the snapshot instant is already "after"
        }
    )
    feats = [f for f in catalog.features_of(catalog.ACTIVITY_VIEW) if f.source == "transactions"]
    before = catalog.compute_features(feats, spine, {"transactions": txns})
    after = catalog.compute_features(feats, spine, {"transactions": pl.concat([txns, future])})
    assert before.equals(after)
    assert before.filter(pl.col("customer_id") == 1)["txn_count_30d"][0] == 2
