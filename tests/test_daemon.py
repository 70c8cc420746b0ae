"""The real daemon carries new on-prem rows all the way to Feast and a new model: the on-prem sensor, the on-prem
run, the cloud location's declarative automation, the online load and the deployment, as deployed: the daemon
beside one long-lived code server per location (`dagster api grpc`)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import catalog
from core.settings import REPO_ROOT
from tests.conftest import SHORT_DAYS, SHORT_LABELS, build_platform, free_port, persistent_instance

LOCATIONS = {"onprem": "hybrid_assets.onprem.definitions", "cloud": "hybrid_assets.cloud.definitions"}


def _wait(predicate, timeout: float, what: str, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    tail = log.read_text()[-4000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def _code_servers(tmp_path: Path, env: dict) -> tuple[list[subprocess.Popen], Path]:
    """One code server per location and a workspace that points at them. (With `-w workspace.yaml` alone the
    daemon starts code servers of its own and replaces them every minute, importing the definitions again.)"""
    bin_dir = os.path.dirname(sys.executable)
    procs, entries = [], []
    for name, module in LOCATIONS.items():
        port, log = free_port(), tmp_path / f"code-server-{name}.log"
        procs.append(
            subprocess.Popen(
                [os.path.join(bin_dir, "dagster"), "api", "grpc", "-m", module, "-a", "defs"]
                + ["--location-name", name, "--host", "127.0.0.1", "--port", str(port)],
                cwd=REPO_ROOT,
                env=env,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # with the run workers it starts: stopped as one group
            )
        )
        entries.append(f"  - grpc_server: {{host: 127.0.0.1, port: {port}, location_name: {name}}}\n")
        _wait(
            lambda log=log: "Started Dagster code server" in log.read_text(),
            300,
            f"the {name} code server",
            log,
        )
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("load_from:\n" + "".join(entries))
    return procs, workspace


def test_daemon_reruns_the_graph_after_new_onprem_rows(tmp_path):
    """A deployed platform -> generate --days 7 -> sensor -> on-prem run -> automation -> new online features
    and a new model."""
    platform = build_platform(tmp_path, customers=2500, days=SHORT_DAYS, run=False, env=SHORT_LABELS)
    # a small data set gives noisy holdout AUCs; this test is about the automation, not the model gate
    tolerance = {"HYBRID_AUC_TOLERANCE": "0.05"}
    store, registry = platform.object_store(), platform.registry()
    # The platform as the daemon finds it in production: both locations materialized and a model deployed, on
    # the daemon's own instance (in process here: the daemon's part starts with the new rows).
    with persistent_instance(platform) as instance:
        for location in ("onprem", "cloud"):
            outcome = platform.run(location, instance=instance, **tolerance)
            assert outcome.success, outcome.step_failures
    first = registry.production()["version"]

    def latest_online() -> str:
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

    before = latest_online()
    platform.generator().append(days=7)  # a week later: a new labelled snapshot too
    env = {
        **os.environ,
        **platform.env,
        "HYBRID_HOME": str(tmp_path),
        "HYBRID_PROFILE": "embedded",
        **tolerance,
    }
    from hybrid_cli.platform import prepare_dagster_home

    env["DAGSTER_HOME"] = prepare_dagster_home(platform.settings)
    log = tmp_path / "daemon.log"
    servers, workspace = _code_servers(tmp_path, env)
    daemon = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "dagster-daemon"), "run", "-w", str(workspace)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        # the sensor's first tick sees rows beyond its empty cursor: an on-prem run, then the cloud follows.
        # Model versions are content addresses: a new one means a model trained on other data.
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
        for server in servers:  # a code server waits for its runs; a run still going is of no interest here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    assert latest_online() > before
    online, newest = served_and_newest()
    assert online["txn_count_30d"] == newest, json.dumps(online)[:500]
