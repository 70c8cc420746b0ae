"""The definitions of both code locations load without any server or data, and the boundary holds."""

import os
from pathlib import Path

import dagster as dg

from tests.conftest import hybrid_env

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


def _load(home: Path, **env):
    from hybrid_assets.cloud.definitions import defs as cloud_defs
    from hybrid_assets.onprem.definitions import defs as onprem_defs

    with hybrid_env(home, **env):
        return onprem_defs(), cloud_defs()


def _describe(location: str, defs: dg.Definitions) -> list[str]:
    graph = defs.resolve_asset_graph()

    def partitions(key) -> str:
        p = graph.get(key).partitions_def
        return f" partitions={type(p).__name__}(start={p.start:%Y-%m-%d})" if p else ""

    lines = [
        f"{location} asset {k.to_user_string()} group={graph.get(k).group_name}{partitions(k)}"
        for k in graph.get_all_asset_keys()
        if graph.get(k).is_materializable
    ]
    lines += [f"{location} check {k.asset_key.to_user_string()}.{k.name}" for k in graph.asset_check_keys]
    lines += [f"{location} job {j.name}" for j in defs.resolve_all_job_defs() if not j.name.startswith("__")]
    lines += [f"{location} sensor {s.name}" for s in (defs.sensors or [])]
    lines += [f"{location} schedule {s.name} {s.cron_schedule}" for s in (defs.schedules or [])]
    lines += [
        f"{location} freshness {k.to_user_string()} {type(graph.get(k).freshness_policy).__name__}"
        for k in graph.get_all_asset_keys()
        if graph.get(k).freshness_policy is not None
    ]
    return sorted(lines)


def test_definitions_load_without_any_server_or_data(tmp_path):
    home = tmp_path / "never-created"
    onprem, cloud = _load(home)
    assert onprem.resolve_asset_graph().get_all_asset_keys()
    assert cloud.resolve_asset_graph().get_all_asset_keys()
    assert not home.exists(), "loading definitions must not create state or connect anywhere"


def test_definitions_snapshot(tmp_path):
    """Every asset key, check, job, sensor, schedule and freshness policy; a rename shows up as a diff of
    tests/snapshots/definitions.txt (regenerate: HYBRID_UPDATE_SNAPSHOT=1 pytest tests/test_definitions.py)."""
    onprem, cloud = _load(tmp_path)
    lines = _describe("onprem", onprem) + _describe("cloud", cloud)
    if os.environ.get("HYBRID_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text("\n".join(lines) + "\n")
    assert "\n".join(lines) + "\n" == SNAPSHOT.read_text()


def test_cloud_location_has_no_warehouse_connection(tmp_path):
    onprem, cloud = _load(tmp_path)
    assert "warehouse" in onprem.resources
    assert not any("warehouse" in key.lower() for key in cloud.resources)
    for resource in cloud.resources.values():
        assert "onprem.duckdb" not in repr(resource)


def test_cloud_assets_depend_on_onprem_export_keys(tmp_path):
    onprem, cloud = _load(tmp_path)
    exported = {k.to_user_string() for k in onprem.resolve_asset_graph().get_all_asset_keys()}
    cloud_graph = cloud.resolve_asset_graph()
    upstream = {
        d.to_user_string()
        for k in cloud_graph.get_all_asset_keys()
        if cloud_graph.get(k).is_materializable
        for d in cloud_graph.get(k).parent_keys
    }
    crossing = upstream - {
        k.to_user_string() for k in cloud_graph.get_all_asset_keys() if cloud_graph.get(k).is_materializable
    }
    assert crossing == {"customer_feature_export", "churn_label_export"}
    assert crossing <= exported


def test_every_asset_and_check_is_described(tmp_path):
    for defs in _load(tmp_path):
        graph = defs.resolve_asset_graph()
        for key in graph.get_all_asset_keys():
            node = graph.get(key)
            if node.is_materializable:
                assert node.description and len(node.description) > 40, key
        for check in defs.resolve_asset_graph().asset_check_keys:
            assert graph.get_check_spec(check).description, check
