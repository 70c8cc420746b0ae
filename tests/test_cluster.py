"""Scale-out on a real Dask cluster: a scheduler and two worker processes on loopback (real TCP), started the way
`hybrid cluster up` starts them. The training-set join and LightGBM on the cloud's cluster, an on-prem backfill on
the on-prem one, and a worker killed in the middle of the join. These tests never skip: `distributed` is a
dependency and the cluster runs on loopback.
"""

import os
import re
from pathlib import Path

import pytest

from core import catalog
from hybrid_assets.cloud import training
from hybrid_cli.cluster import start_cluster, stop_cluster
from resources.dask_cluster import cluster_client, worker_addresses
from resources.feature_store import open_feature_store
from tests.conftest import SHORT_DAYS, SHORT_LABELS, build_platform

_FOLDERS: dict[str, Path] = {}  # scheduler address -> the folder of its logs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask") / "cluster"
    address = start_cluster(folder, workers=2)
    _FOLDERS[address] = folder
    yield address
    stop_cluster(folder)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A platform of this module's own, run through both locations in process: the cluster's results are
    compared with it. Not the session's platform, so this module is a scope of its own and runs on another
    worker than the modules that share that platform (tests/conftest.py). Today's label definition, on enough
    days for it: the LightGBM test splits the training set with the default horizon."""
    return build_platform(tmp_path_factory.mktemp("deployed"), customers=3000, days=150)


@pytest.fixture(autouse=True)
def _two_workers_or_why(request):
    """Each test that uses the module's cluster starts with both workers; if one is gone, the failure quotes
    what the scheduler and the workers logged about it, so a lost worker is told apart from a wrong join."""
    if "cluster" not in request.fixturenames:
        yield
        return
    address = request.getfixturevalue("cluster")
    with cluster_client(address) as client:
        workers = worker_addresses(client)
    assert len(workers) == 2, f"a worker of {address} is gone before the test: {cluster_events(address)}"
    yield


def cluster_events(address: str, limit: int = 25) -> str:
    """What the cluster's processes logged that is not routine (warnings, errors, workers removed, closed or
    restarted), the last ``limit`` lines, for an assertion's message."""
    folder = _FOLDERS.get(address)
    if folder is None:
        return "(no logs)"
    pattern = re.compile(
        r"WARNING|ERROR|CRITICAL|Remove worker|[Cc]losing|[Rr]estart|exceeded|signal|unresponsive"
    )
    lines = [
        f"{log.stem}: {line.strip()[:300]}"
        for log in sorted(folder.glob("*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if pattern.search(line)
    ]
    return "\n".join(lines[-limit:]) or "(nothing but routine lines in the logs)"


def _training_set(platform):
    store = open_feature_store(platform.home, "embedded")
    labels = platform.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)
    return training.build_training_set(store, labels)


def test_the_training_set_from_the_cluster_equals_the_in_process_one(deployed, cluster):
    local, local_report = _training_set(deployed)
    assert local_report.cluster is None and not local_report.tasks
    with cluster_client(cluster) as client:
        remote, report = _training_set(deployed)
        workers = worker_addresses(client)
    assert report.cluster == cluster
    assert remote.equals(local, null_equal=True) and remote.height == local.height > 1000
    # one as-of join per customer partition, on both workers, none in this process
    why = cluster_events(cluster)
    assert len(report.tasks) >= 2 and {t["worker"] for t in report.tasks} == set(workers), why
    pids = {t["pid"] for t in report.tasks}
    assert len(pids) == 2 and os.getpid() not in pids, why


def test_lightgbm_trains_on_both_workers_and_matches_the_single_process_model(deployed, cluster):
    frame = deployed.object_store().read_parquet(catalog.TRAINING_SET_KEY)
    split = training.time_split(frame)
    features = catalog.feature_names()
    labels, holdout = split.holdout["churned"].to_numpy(), training.matrix(split.holdout, features)
    single = training.train(split.train, features)
    with cluster_client(cluster) as client:
        distributed = training.train_on_cluster(client, split.train, features)
    # a plain Booster, which the registry and the endpoint take as they are; trained by two machines
    assert type(distributed).__name__ == "Booster"
    assert "[num_machines: 2]" in distributed.model_to_string(), cluster_events(cluster)
    single_auc, distributed_auc = (
        training.auc(labels, single.predict(holdout)),
        training.auc(labels, distributed.predict(holdout)),
    )
    assert abs(single_auc - distributed_auc) <= 0.01, (single_auc, distributed_auc)


def test_an_onprem_backfill_on_the_cluster_writes_byte_identical_exports(tmp_path, cluster):
    platform = build_platform(tmp_path / "home", customers=1500, days=100, run=False)
    assert platform.run("onprem").success
    store = platform.object_store()
    before = store.checksums(catalog.ACTIVITY_EXPORT_KEY)
    assert len(before) > 30
    for key in before:  # nothing left to compare against: the cluster run writes every day again
        store.delete(key)
    platform.warehouse().execute("delete from platform.customer_features")
    outcome = platform.run("onprem", HYBRID_ONPREM_DASK_SCHEDULER=cluster)
    assert outcome.success, outcome.step_failures
    meta = outcome.materialized["customer_features"]
    assert meta["compute_engine"] == f"the Dask cluster at {cluster}"
    assert meta["compute_tasks"] >= 2 and len(meta["compute_workers"]) == 2, cluster_events(cluster)
    assert store.checksums(catalog.ACTIVITY_EXPORT_KEY) == before


def test_a_worker_killed_in_the_middle_of_the_join_leaves_the_training_set_whole(deployed, tmp_path):
    from tests.cluster_faults import DieOnceWhileJoining

    local, _ = _training_set(deployed)
    folder = tmp_path / "cluster"
    address = start_cluster(folder, workers=2)
    marker = tmp_path / "died"
    try:
        with cluster_client(address) as client:
            client.register_plugin(DieOnceWhileJoining(str(marker)))
            remote, report = _training_set(deployed)
    finally:
        stop_cluster(folder)
    assert marker.exists(), "no worker died: the fault was not injected"
    died = int(marker.read_text())
    assert remote.equals(local, null_equal=True)  # Dask reran the lost tasks elsewhere: nothing missing
    assert died not in {t["pid"] for t in report.tasks}


def test_the_cloud_location_builds_trains_and_deploys_on_its_cluster(tmp_path, cluster):
    """Through Dagster, end to end: the training set's join and LightGBM on the cluster, then the gate and the
    deployment as always; the registered model is a plain Booster trained by two machines."""
    import lightgbm as lgb

    platform = build_platform(tmp_path / "home", customers=3000, days=SHORT_DAYS, run=False, env=SHORT_LABELS)
    assert platform.run("onprem").success
    outcome = platform.run("cloud", HYBRID_DASK_SCHEDULER=cluster)
    assert outcome.success, outcome.step_failures + [c.description for c in outcome.blocking_failures]
    joined = outcome.materialized["training_set"]
    assert joined["join_engine"] == f"the Dask cluster at {cluster}"
    assert len(joined["join_workers"]) == 2, cluster_events(cluster)
    registry = platform.registry()
    production = registry.production()
    assert production["version"] == outcome.materialized["churn_model"]["version"]
    meta = registry.metadata(production["version"])
    assert meta["trained_on"] == f"the Dask cluster at {cluster} (2 workers)"
    booster = lgb.Booster(model_str=registry.model_text(production["version"]))
    assert "[num_machines: 2]" in booster.model_to_string() and meta["metrics"]["auc"] > 0.7
