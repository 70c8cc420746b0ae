"""What a churn label means is a setting (HYBRID_LABEL_HORIZON_DAYS, HYBRID_ACTIVE_DAYS,
HYBRID_SNAPSHOT_EVERY_DAYS): the labels, the time-based holdout and the model's metadata follow it."""

from datetime import date, datetime, timedelta
from itertools import pairwise

import polars as pl
import pytest

from core import catalog
from core.catalog import LabelDefinition
from hybrid_assets.cloud import training
from hybrid_assets.onprem.labels import compute_labels
from tests.conftest import SHORT_LABELS, build_platform

SHORT = LabelDefinition(horizon_days=10, active_days=5, every_days=3)


def _purchases(*rows: tuple[int, datetime]) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": [c for c, _ in rows], "event_ts": [t for _, t in rows]},
        schema={"customer_id": pl.Int64, "event_ts": pl.Datetime("us")},
    )


def test_the_label_definition_decides_who_is_labelled_churned_and_when():
    start = date(2026, 1, 1)
    snap = datetime.combine(catalog.snapshots(start, date(2026, 12, 31))[0], datetime.min.time())
    day = timedelta(days=1)
    txns = _purchases(
        (1, snap - 3 * day),  # active either way; no purchase after: churned
        (2, snap - 3 * day),
        (2, snap + 9 * day),  # bought within 10 days: not churned, under either horizon
        (3, snap - 7 * day),  # active in 14 days, not in 5
        (4, snap - 1 * day),
        (4, snap + 12 * day),  # bought after 10 days but within 30
    )
    end = snap.date() + timedelta(days=45)

    def first_snapshot(definition: LabelDefinition | None) -> dict[int, int]:
        frame = compute_labels(txns, start, end, definition)
        first = frame.filter(pl.col(catalog.EVENT_TS) == frame[catalog.EVENT_TS].min())
        assert first[catalog.EVENT_TS][0] == snap
        return dict(zip(first["customer_id"].to_list(), first["churned"].to_list(), strict=True))

    assert first_snapshot(None) == {1: 1, 2: 0, 3: 1, 4: 0}  # today's definition: 14 days active, 30 ahead
    assert first_snapshot(SHORT) == {1: 1, 2: 0, 4: 1}

    # a snapshot every 3 days from a Monday; the days with nobody active have no rows
    every = catalog.snapshots(start, end, 3)
    assert every[0].weekday() == catalog.SNAPSHOT_WEEKDAY and {(b - a).days for a, b in pairwise(every)} == {
        3
    }
    days = {d.date() for d in compute_labels(txns, start, end, SHORT)[catalog.EVENT_TS].to_list()}
    assert {snap.date(), snap.date() + 3 * day} <= days <= {d for d in every if d + timedelta(days=10) <= end}


def test_the_holdout_keeps_the_labels_horizon_between_training_and_holdout():
    snaps = [datetime(2026, 3, 2) + timedelta(days=3 * i) for i in range(12)]
    frame = pl.DataFrame({catalog.EVENT_TS: snaps, "churned": [0, 1] * 6})
    for horizon in (10, 30):
        split = training.time_split(frame, horizon_days=horizon)
        hold = datetime.fromisoformat(split.holdout_snapshots[0])
        trained = [datetime.fromisoformat(s) for s in split.train_snapshots]
        assert trained == [s for s in snaps if s <= hold - timedelta(days=horizon)]
    assert len(training.time_split(frame, horizon_days=10).train_snapshots) > len(
        training.time_split(frame, horizon_days=30).train_snapshots
    )


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("HYBRID_LABEL_HORIZON_DAYS", ["1", "30", "365"], ["0", "366", "-3", "2.5", "a month", "1e2"]),
        ("HYBRID_ACTIVE_DAYS", ["1", " 14 ", "365"], ["0", "400", "two weeks"]),
        ("HYBRID_SNAPSHOT_EVERY_DAYS", ["1", "7", "91"], ["0", "92", "weekly"]),
    ],
)
def test_day_settings_are_whole_numbers_in_range(tmp_path, name, good, bad):
    from core.settings import DAY_SETTINGS, ConfigError, load_settings

    attr = DAY_SETTINGS[name][0]
    for value in good:
        settings = load_settings({"HYBRID_HOME": str(tmp_path), name: value}, apply_env_file=False)
        assert getattr(settings, attr) == int(value)
    for value in bad:
        with pytest.raises(ConfigError) as error:
            load_settings({"HYBRID_HOME": str(tmp_path), name: value}, apply_env_file=False)
        assert name in str(error.value) and "whole number of days" in str(error.value)
    defaults = load_settings({"HYBRID_HOME": str(tmp_path)}, apply_env_file=False)
    assert defaults.labels == LabelDefinition() == LabelDefinition.from_metadata(None)


def test_both_locations_follow_the_label_settings_end_to_end(tmp_path):
    """100 days of history: with today's definition (a 30-day horizon, weekly), too few labelled snapshots
    for a time-based holdout; with a 10-day horizon every 3 days, the graph labels, trains and registers."""
    platform = build_platform(tmp_path / "home", customers=300, days=100, run=False)
    onprem = platform.run("onprem", **SHORT_LABELS)
    assert onprem.success, onprem.step_failures
    meta = onprem.materialized["churn_labels"]
    assert (meta["label_horizon_days"], meta["active_days"], meta["snapshot_every_days"]) == (10, 5, 3)

    # the labels in the warehouse, checked against the transactions with SQL of their own
    wh = platform.warehouse()
    snaps = wh.query(f"select distinct {catalog.EVENT_TS} t from platform.churn_labels order by 1")[
        "t"
    ].to_list()
    assert len(snaps) >= 8 and {(b - a).days for a, b in pairwise(snaps)} == {3}
    snap = snaps[len(snaps) // 2]
    expected = wh.query(
        f"""
        select customer_id,
               cast(count(*) filter (where event_ts >= timestamp '{snap}'
                                     and event_ts < timestamp '{snap}' + interval 10 day) = 0 as bigint) churned
        from platform.transactions
        group by customer_id
        having count(*) filter (where event_ts >= timestamp '{snap}' - interval 5 day
                                and event_ts < timestamp '{snap}') > 0
        order by customer_id"""
    )
    got = wh.query(
        f"select customer_id, churned from platform.churn_labels where {catalog.EVENT_TS} = timestamp '{snap}' "
        "order by customer_id"
    )
    assert got.height > 20 and got.equals(expected)

    cloud = platform.run("cloud", **SHORT_LABELS)
    assert "churn_model" in cloud.materialized, cloud.step_failures  # the gate may judge it; it is trained
    registry = platform.registry()
    version = cloud.materialized["churn_model"]["version"]
    model = registry.metadata(version)
    assert model["label_definition"] == SHORT.as_metadata()
    hold = datetime.fromisoformat(model["training_window"]["holdout_snapshots"][0])
    trained = [datetime.fromisoformat(s) for s in model["training_window"]["train_snapshots"]]
    assert trained and max(trained) <= hold - timedelta(days=10) and max(trained) > hold - timedelta(days=30)
    card = registry.artifact(version, "model_card.md").decode()
    assert "purchase in the last 5 days" in card and "next 10 days" in card and "every 3 days" in card
