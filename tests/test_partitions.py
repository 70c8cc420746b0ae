"""Daily partitions (hybrid_assets/partitions.py): a partition rerun is byte-identical with no duplicate rows,
a backfill over a date range is one run whose steps run in parallel processes, new arrival days are loaded
into the online store incrementally, and a late row lands in the day it arrived."""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from core import catalog
from core.days import as_of
from resources.warehouse import PLATFORM_SCHEMA, QUARANTINE_TABLE
from tests.conftest import SHORT_DAYS, SHORT_LABELS, build_platform, hybrid_env


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    return build_platform(tmp_path_factory.mktemp("daily"), customers=1500, days=SHORT_DAYS, env=SHORT_LABELS)


def _day_state(platform, day):
    wh, store = platform.warehouse(), platform.object_store()
    start, end = as_of(day), as_of(day) + timedelta(days=1)
    return {
        "export": store.get_bytes(catalog.day_object(catalog.ACTIVITY_EXPORT_KEY, day)),
        "transactions": wh.query(
            f"select * from {PLATFORM_SCHEMA}.transactions where ingested_at >= ? and ingested_at < ? "
            "order by transaction_id",
            [start, end],
        ),
        "features": wh.query(
            f"select * from {PLATFORM_SCHEMA}.customer_features where event_timestamp = ? order by customer_id",
            [start],
        ),
        "quarantined": wh.query(
            f"select reason, row_key from {QUARANTINE_TABLE} where partition_key = ? order by row_key",
            [day.isoformat()],
        ),
    }


def _no_duplicates(platform):
    wh = platform.warehouse()
    assert (
        wh.scalar(f"select count(*) - count(distinct transaction_id) from {PLATFORM_SCHEMA}.transactions")
        == 0
    )
    assert (
        wh.scalar(
            f"select count(*) from (select customer_id, event_timestamp from {PLATFORM_SCHEMA}.customer_features "
            "group by 1, 2 having count(*) > 1)"
        )
        == 0
    )


def _arrival_days(platform):
    lo, hi = platform.warehouse().query("select min(ingested_at), max(ingested_at) from transactions").row(0)
    return lo.date(), hi.date()


def test_rerunning_a_partition_gives_the_same_bytes_and_no_duplicate_rows(daily):
    first, last = _arrival_days(daily)
    day = first + (last - first) // 2
    before = _day_state(daily, day)
    assert before["transactions"].height and before["features"].height
    outcome = daily.run("onprem", days=(day, day))
    assert outcome.success, outcome.step_failures
    assert outcome.materialized["customer_feature_export"]["days_unchanged"] == 1
    after = _day_state(daily, day)
    assert after["export"] == before["export"]  # the object crossing the boundary: the very same bytes
    for name in ("transactions", "features", "quarantined"):
        assert after[name].equals(before[name]), name
    _no_duplicates(daily)


def test_a_backfill_over_a_date_range_is_one_run_of_parallel_processes(daily, tmp_path):
    first, last = _arrival_days(daily)
    lo, hi = last - timedelta(days=9), last - timedelta(days=5)
    before = {d: _day_state(daily, d)["export"] for d in (lo, hi)}
    from hybrid_cli.platform import backfill_onprem

    with hybrid_env(daily.home, **daily.env), dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        ok, run_id = backfill_onprem(lo, hi, instance)  # what `hybrid backfill --start --end` runs
        assert ok
        run = instance.get_run_by_id(run_id)
        assert run.tags["dagster/asset_partition_range_start"] == lo.isoformat()
        logs = instance.all_logs(run_id)
        step_pids = {
            e.dagster_event.pid
            for e in logs
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        }
        engine = " ".join(e.message for e in logs if e.dagster_event and e.dagster_event.is_engine_event)
        done = instance.get_materialized_partitions(dg.AssetKey("customer_features"))
    assert "multiprocess executor" in engine
    assert len(step_pids) > 1, "each step runs in its own process"
    assert done == {(lo + timedelta(days=i)).isoformat() for i in range(5)}
    for d, data in before.items():
        assert _day_state(daily, d)["export"] == data
    _no_duplicates(daily)


def test_new_days_are_loaded_into_the_online_store_incrementally(daily):
    from hybrid_assets.onprem.defs.raw import new_onprem_data
    from resources.warehouse import WarehouseResource

    sensor = new_onprem_data
    resources = {"warehouse": WarehouseResource(duckdb_path=str(daily.settings.warehouse_path))}
    context = dg.build_sensor_context(instance=daily.instance, resources=resources)
    assert isinstance(sensor(context), dg.RunRequest)  # the first tick: everything so far
    cursor = context.cursor
    _, old_last = _arrival_days(daily)
    with hybrid_env(daily.home, **daily.env):
        daily.generator().append(days=2)
    context = dg.build_sensor_context(instance=daily.instance, resources=resources, cursor=cursor)
    request = sensor(context)
    _, new_last = _arrival_days(daily)
    assert request.tags["dagster/asset_partition_range_start"] == old_last.isoformat()
    assert request.tags["dagster/asset_partition_range_end"] == new_last.isoformat()
    assert daily.run("onprem", days=(old_last, new_last)).success

    cloud = daily.run("cloud")
    online = cloud.materialized["online_features"]
    assert not online["full_reload"]
    new_days = (new_last - old_last).days + 1
    assert online["days_loaded"] <= new_days  # the rewritten last day and the new ones, nothing older
    assert online["objects_loaded"] == 2 * online["days_loaded"]
    assert online["objects_unchanged"] >= 2 * (SHORT_DAYS - 10)  # every older day, of both views
    assert online["latest_feature_timestamp"] == str(as_of(new_last))
    check = next(c for c in cloud.checks if c.check == "online_matches_offline")
    assert check.passed, check.description

    again = daily.run("cloud").materialized.get("online_features")
    assert again is not None and again["objects_loaded"] == 0 and again["days_loaded"] == 0


def test_a_late_row_lands_in_the_day_it_arrived_and_old_days_keep_their_bytes(daily):
    first, last = _arrival_days(daily)
    old_day = last - timedelta(days=20)
    before = _day_state(daily, old_day)
    wh = daily.warehouse()
    row = wh.query("select * from transactions order by transaction_id desc limit 1").with_columns(
        transaction_id=pl.lit(10**12, dtype=pl.Int64),
        event_ts=pl.lit(datetime.combine(old_day, datetime.min.time()) + timedelta(hours=12)),
        ingested_at=pl.lit(datetime.combine(last, datetime.min.time()) + timedelta(hours=23)),
    )
    wh.append("transactions", row)
    assert daily.run("onprem", days=(last, last)).success
    landed = wh.query(
        f"select ingested_at from {PLATFORM_SCHEMA}.transactions where transaction_id = ?", [10**12]
    )
    assert landed.height == 1
    assert _day_state(daily, old_day)["export"] == before["export"]  # published days are not rewritten
    _no_duplicates(daily)
