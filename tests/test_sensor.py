"""The on-prem sensor: new rows in the warehouse give a RunRequest; no new rows give none."""

import dagster as dg

from hybrid_assets.onprem.defs.raw import new_onprem_data
from resources.warehouse import WarehouseResource
from tests.conftest import build_platform


def _tick(sensor, instance, cursor, path):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"warehouse": WarehouseResource(duckdb_path=path)}
    )
    result = sensor(context)
    return result, context.cursor


def test_new_rows_request_a_run_and_no_new_rows_do_not(tmp_path):
    platform = build_platform(tmp_path, customers=300, days=20, run=False)
    path = str(platform.settings.warehouse_path)
    sensor = new_onprem_data
    first, cursor = _tick(sensor, platform.instance, None, path)
    assert isinstance(first, dg.RunRequest)
    lo, hi = platform.warehouse().query("select min(ingested_at), max(ingested_at) from transactions").row(0)
    # the first tick asks for every arrival day, as one run over the range of daily partitions
    assert first.tags["dagster/asset_partition_range_start"] == lo.date().isoformat()
    assert first.tags["dagster/asset_partition_range_end"] == hi.date().isoformat()
    again, same = _tick(sensor, platform.instance, cursor, path)
    assert isinstance(again, dg.SkipReason) and same == cursor
    platform.generator().append(days=1)
    new, moved = _tick(sensor, platform.instance, cursor, path)
    assert isinstance(new, dg.RunRequest)
    assert moved != cursor and new.run_key == moved
    assert "transactions" in new.tags["changed"]
    newest = platform.warehouse().query("select max(ingested_at) from transactions").item()
    # later ticks ask for the days from the previous newest arrival to the new one, nothing older
    assert new.tags["dagster/asset_partition_range_start"] == hi.date().isoformat()
    assert new.tags["dagster/asset_partition_range_end"] == newest.date().isoformat()


def test_unreadable_warehouse_skips_with_a_reason(tmp_path):
    sensor = new_onprem_data
    result, _ = _tick(sensor, dg.DagsterInstance.ephemeral(), None, str(tmp_path / "missing.duckdb"))
    assert isinstance(result, dg.SkipReason)
    assert "missing.duckdb" in result.skip_message
