"""The cloud side follows the on-prem side: in-process evaluation of the automation conditions (the real
daemon doing it end to end is tests/test_daemon.py)."""

import dagster as dg

from hybrid_assets.cloud.definitions import group_defs as cloud_groups
from hybrid_assets.onprem.definitions import group_defs as onprem_groups

FOLLOWERS = {"marketing_engagement", "online_features", "training_set"}


def _requested(result) -> set[str]:
    return {
        k.to_user_string()
        for k in (a.key for a in [*onprem_groups().assets, *cloud_groups().assets])
        if result.get_num_requested(k)
    }


def _both_locations(settings) -> dg.Definitions:
    """Both locations' assets and checks in one graph, as the automation sees them across locations."""
    from hybrid_assets.resources import cloud_resources, onprem_resources

    onprem, cloud = onprem_groups(), cloud_groups()
    return dg.Definitions(
        assets=[*onprem.assets, *cloud.assets],
        asset_checks=[*onprem.asset_checks, *cloud.asset_checks],
        resources={**onprem_resources(settings), **cloud_resources(settings)},
    )


def test_cloud_assets_follow_a_new_export(platform):
    defs = _both_locations(platform.settings)
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=platform.instance)
    assert not FOLLOWERS & _requested(quiet), "nothing changed upstream: nothing to do"
    assert platform.run("onprem").success  # a new export, its blocking checks passed
    after = dg.evaluate_automation_conditions(defs=defs, instance=platform.instance, cursor=quiet.cursor)
    assert FOLLOWERS <= _requested(after)
    assert not {a.key.to_user_string() for a in onprem_groups().assets} & _requested(after), (
        "on-prem runs by sensor only"
    )


def test_a_fresh_cloud_is_requested_whole_on_one_tick(tmp_path):
    """A fresh deployment: the on-prem export and the marketing events are there and their blocking checks
    passed, every cloud asset is missing. One evaluation requests the whole chain (it runs as one run, its
    steps in dependency order), not one level of the graph per tick."""
    from core.settings import load_settings
    from tests.conftest import hybrid_env

    with hybrid_env(tmp_path):
        defs = _both_locations(load_settings())
    instance = dg.DagsterInstance.ephemeral()
    upstream = {"customer_feature_export": "2026-03-01", "churn_label_export": None, "marketing_events": None}
    for asset, partition in upstream.items():
        instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=partition))
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=dg.AssetKey(asset), check_name=f"{asset}_contract", passed=True)
        )
    cloud_assets = {k.to_user_string() for a in cloud_groups().assets for k in a.keys}
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert _requested(tick) == cloud_assets - set(upstream)
