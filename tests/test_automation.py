"""The cloud side follows the on-prem side: in-process evaluation of the automation conditions, and the
real daemon (`dagster-daemon run -w workspace.yaml`) carrying new on-prem rows all the way to Feast."""

import json
import os
import subprocess
import sys
import time

import dagster as dg
import pytest

from core import catalog
from core.settings import REPO_ROOT
from hybrid_assets.cloud.definitions import group_defs as cloud_groups
from hybrid_assets.onprem.definitions import group_defs as onprem_groups
from tests.conftest import build_platform

FOLLOWERS = {"marketing_engagement", "online_features", "training_set"}


def _requested(result) -> set[str]:
    return {
        k.to_user_string()
        for k in (a.key for a in [*onprem_groups().assets, *cloud_groups().assets])
        if result.get_num_requested(k)
    }


def test_cloud_assets_follow_a_new_export(platform):
    from hybrid_assets.resources import cloud_resources, onprem_resources

    onprem, cloud = onprem_groups(), cloud_groups()
    defs = dg.Definitions(
        assets=[*onprem.assets, *cloud.assets],
        asset_checks=[*onprem.asset_checks, *cloud.asset_checks],
        resources={**onprem_resources(platform.settings), **cloud_resources(platform.settings)},
    )
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=platform.instance)
    assert not FOLLOWERS & _requested(quiet), "nothing changed upstream: nothing to do"
    assert platform.run("onprem").success  # a new export, its blocking checks passed
    after = dg.evaluate_automation_conditions(defs=defs, instance=platform.instance, cursor=quiet.cursor)
    assert FOLLOWERS <= _requested(after)
    assert not {a.key.to_user_string() for a in onprem.assets} & _requested(after), (
        "on-prem runs by sensor only"
    )


def _wait(predicate, timeout: float, what: str, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def test_daemon_reruns_the_graph_after_new_onprem_rows(tmp_path):
    """generate --days 7 -> sensor -> on-prem run -> automation -> new online features and a new model."""
    platform = build_platform(tmp_path, customers=2500, days=150, run=False)
    # a small data set gives noisy holdout AUCs; this test is about the automation, not the model gate
    env = {
        **os.environ,
        "HYBRID_HOME": str(tmp_path),
        "HYBRID_PROFILE": "embedded",
        "HYBRID_AUC_TOLERANCE": "0.05",
    }
    from hybrid_cli.platform import prepare_dagster_home

    env["DAGSTER_HOME"] = prepare_dagster_home(platform.settings)
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    store, registry = platform.object_store(), platform.registry()

    def latest_online() -> str:
        if not store.list(catalog.ACTIVITY_EXPORT_KEY):
            return ""
        return str(
            store.read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.EVENT_TS])[
                catalog.EVENT_TS
            ].max()
        )

    def served_and_newest() -> tuple[dict, list]:
        """What the online store serves for three customers, and their values of the export's newest day."""
        from resources.feature_store import open_feature_store

        fs = open_feature_store(tmp_path, "embedded")
        export = store.read_parquet(catalog.ACTIVITY_EXPORT_KEY)
        newest = export.filter(export[catalog.EVENT_TS] == export[catalog.EVENT_TS].max()).head(3)
        online = fs.get_online_features(
            features=fs.get_feature_service(catalog.FEATURE_SERVICE),
            entity_rows=[{"customer_id": int(i)} for i in newest["customer_id"]],
        ).to_dict()
        return online, newest["txn_count_30d"].to_list()

    try:
        # the sensor's first tick sees rows beyond its empty cursor: the whole graph runs and deploys
        _wait(lambda: registry.production() is not None, 900, "the first deployment", log)
        first = registry.production()["version"]
        before = latest_online()
        platform.generator().append(days=7)  # a week later: a new labelled snapshot too
        _wait(
            lambda: (registry.production() or {}).get("version") != first, 900, "a new production model", log
        )
        # the online load is another branch of the graph than the model: it may finish after the deployment
        _wait(
            lambda: (lambda online, newest: online["txn_count_30d"] == newest)(*served_and_newest()),
            600,
            "the newest day online",
            log,
        )
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    assert latest_online() > before
    online, newest = served_and_newest()
    assert online["txn_count_30d"] == newest, json.dumps(online)[:500]
