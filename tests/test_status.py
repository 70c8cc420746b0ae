"""`hybrid status` (hybrid_cli/status.py): a materialized home, an empty home, the status logic on a
small instance with a partitioned asset, a warning and a skipped check, and --strict after a failed run, a
killed run and a failed ERROR check."""

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from hybrid_cli import status
from tests.conftest import free_port, hybrid_env, running_server
from tests.test_pipeline import CLOUD_ASSETS, ONPREM_ASSETS

CHECKS = {
    "customers.customers_contract",
    "transactions.transactions_contract",
    "support_tickets.support_tickets_contract",
    "customer_features.customer_features_contract",
    "churn_labels.churn_labels_contract",
    "customer_feature_export.customer_feature_export_contract",
    "churn_label_export.churn_label_export_contract",
    "marketing_events.marketing_events_contract",
    "marketing_engagement.marketing_engagement_contract",
    "online_features.online_matches_offline",
    "training_set.training_set_contract",
    "churn_model.churn_model_quality",
}
JOBS = {
    ("onprem", "__ASSET_JOB"),
    ("onprem", "onprem_refresh"),
    ("cloud", "__ASSET_JOB"),
    ("cloud", "cloud_refresh"),
    ("cloud", "marketing_refresh"),
    ("cloud", "retrain"),
}


def hybrid_status(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYBRID_HOME": str(home), "HYBRID_PROFILE": "embedded"}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "hybrid_cli.cli", "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def _copy_instance(source: dg.DagsterInstance, target: dg.DagsterInstance) -> None:
    for run in reversed(source.get_runs()):  # oldest first: the target numbers its runs in that order
        storage = target.run_storage
        if run.job_snapshot_id and not storage.has_job_snapshot(run.job_snapshot_id):
            storage.add_job_snapshot(source.get_job_snapshot(run.job_snapshot_id))
        plan = run.execution_plan_snapshot_id
        if plan and not storage.has_execution_plan_snapshot(plan):
            storage.add_execution_plan_snapshot(source.get_execution_plan_snapshot(plan))
        target.add_run(run)
        for entry in source.all_logs(run.run_id):
            target.event_log_storage.store_event(entry)


@pytest.fixture(scope="module")
def status_home(platform) -> Path:
    """The session platform runs on an ephemeral Dagster instance; write its runs and events into the home's
    own instance ($HYBRID_HOME/dagster), where `hybrid demo` would have written them, so that a separate
    `hybrid status` process can read them."""
    from hybrid_cli.platform import DAGSTER_YAML

    dagster_home = platform.settings.dagster_home
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML["embedded"])
    target = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        _copy_instance(platform.instance, target)
    finally:
        target.dispose()
    return platform.home


def test_status_json_on_a_materialized_home_with_the_endpoint_up(platform, status_home):
    production = platform.registry().production()
    with running_server(status_home) as base:
        done = hybrid_status(status_home, "--json", "--strict", "--url", base)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["errors"] == {} and report["problems"] == []
    assets = {a["asset"]: a for a in report["assets"]}
    assert set(assets) == ONPREM_ASSETS | CLOUD_ASSETS
    assert {a["location"] for a in report["assets"] if a["asset"] in ONPREM_ASSETS} == {"onprem"}
    assert assets["churn_model"]["location"] == "cloud"
    for name, row in assets.items():
        assert row["last_materialized"] and len(row["run_id"]) == 36, name
        if name in {"transactions", "customer_features", "customer_feature_export"}:  # daily partitions
            assert 0 < row["partitions"]["materialized"] <= row["partitions"]["total"], name
        else:
            assert row["partitions"] is None, name
    latest = platform.instance.get_latest_materialization_event(dg.AssetKey("churn_model_deployment"))
    assert assets["churn_model_deployment"]["run_id"] == latest.run_id
    checks = {f"{c['asset']}.{c['check']}": c for c in report["checks"]}
    assert set(checks) == CHECKS
    assert not [name for name, c in checks.items() if c["result"] in ("FAIL", "NOT RUN")]
    for name in ("customer_features.customer_features_contract", "churn_model.churn_model_quality"):
        assert checks[name]["result"] == "PASS" and checks[name]["passed"] is True, name
        assert checks[name]["blocking"] is True and checks[name]["evaluated_at"], name
    # the generator's broken transactions: quarantined, a non-blocking warning (as in test_pipeline)
    warn = checks["transactions.transactions_contract"]
    assert (warn["result"], warn["severity"], warn["passed"]) == ("WARN", "WARN", False)
    assert "quarantined" in warn["description"]
    model = report["production_model"]
    assert model["version"] == production["version"]
    assert model["auc"] == pytest.approx(production["metrics"]["auc"])
    assert model["promoted_at"] == production["promoted_at"]
    assert model["model_card"] and Path(model["model_card"]).is_file()
    endpoint = report["endpoint"]
    assert endpoint["reachable"] and endpoint["ready"]
    assert endpoint["responses"]["health"] == {"status_code": 200, "body": {"status": "ok"}}
    assert endpoint["responses"]["ready"]["body"]["model_version"] == production["version"]
    runs = report["runs"]
    assert {(j["location"], j["job"]) for j in runs["jobs"]} == JOBS
    assert runs["stuck"] == [] and runs["stuck_after_s"] == 6 * 3600
    jobs = {j["job"]: j for j in runs["jobs"] if j["job"] != "__ASSET_JOB"}
    for name in ("onprem_refresh", "cloud_refresh"):
        newest = platform.instance.get_runs(dg.RunsFilter(job_name=name), limit=1)[0]
        assert jobs[name]["latest"]["run_id"] == newest.run_id and not jobs[name]["failed"], name
        assert jobs[name]["latest"]["status"] == "SUCCESS" and jobs[name]["latest"]["ended_at"], name
        assert jobs[name]["latest_finished"]["run_id"] == newest.run_id, name


def test_status_text_on_a_materialized_home_with_the_endpoint_down(platform, status_home):
    production = platform.registry().production()
    url = _dead_url()
    done = hybrid_status(status_home, "--url", url)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert "Traceback" not in text + done.stderr
    for asset in ONPREM_ASSETS | CLOUD_ASSETS:
        line = next(x for x in text.splitlines() if f" {asset} " in f"{x} ")
        assert "never materialized" not in line and " run " in line, line
    assert "never materialized" not in text
    line = next(x for x in text.splitlines() if "customer_features.customer_features_contract" in x)
    assert line.split()[0] == "PASS", line
    assert f"  {production['version']}  AUC {production['metrics']['auc']:.4f}" in text
    assert f"Endpoint {url}" in text and "unreachable" in text
    assert "checks 11 passed, 1 warnings, 0 failed, 0 not run" in text
    assert "15/15 assets materialized" in text
    assert "jobs 0 failed, 0 stuck runs" in text
    line = next(x for x in text.splitlines() if " cloud_refresh " in x)
    assert line.split()[:3] == ["cloud", "cloud_refresh", "SUCCESS"], line
    # --strict: the endpoint being down needs attention
    strict = hybrid_status(status_home, "--url", url, "--strict")
    assert strict.returncode == 1
    assert f"attention: endpoint {url} is not ready" in strict.stdout


def test_status_on_an_empty_home_says_nothing_ran_and_creates_nothing(tmp_path):
    home = tmp_path / "nothing-here"
    url = _dead_url()
    done = hybrid_status(home, "--url", url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert "none yet: nothing has run" in done.stdout
    lines = done.stdout.splitlines()
    assert sum(
        line.startswith(("  onprem", "  cloud")) and "never materialized" in line for line in lines
    ) == len(ONPREM_ASSETS | CLOUD_ASSETS)
    assert "none deployed yet" in done.stdout
    assert "0/15 assets materialized" in done.stdout and "12 not run" in done.stdout
    assert sum(line.endswith("  never run") for line in lines) == len(JOBS)
    assert "jobs 0 failed, 0 stuck runs" in done.stdout
    as_json = hybrid_status(home, "--json", "--url", url, "--strict")
    assert as_json.returncode == 1  # --strict: nothing is materialized
    report = json.loads(as_json.stdout)
    assert {a["asset"] for a in report["assets"]} == ONPREM_ASSETS | CLOUD_ASSETS
    assert all(a["last_materialized"] is None for a in report["assets"])
    assert {c["result"] for c in report["checks"]} == {"NOT RUN"} and len(report["checks"]) == 12
    assert report["production_model"] is None and not report["endpoint"]["reachable"]
    assert "no production model" in report["problems"]
    assert {(j["location"], j["job"]) for j in report["runs"]["jobs"]} == JOBS
    assert all(j["latest"] is None and not j["failed"] for j in report["runs"]["jobs"])
    assert report["runs"]["stuck"] == []
    assert not home.exists(), "status must only read"


def test_status_counts_partitions_and_reports_warnings_and_skipped_checks():
    """Assets may become partitioned: the status counts materialized partitions; a check that a later run
    planned but skipped keeps its last result and says so."""
    start = date.today() - timedelta(days=10)
    daily = dg.DailyPartitionsDefinition(start_date=start.isoformat())

    @dg.asset(partitions_def=daily)
    def events_by_day() -> None:
        return None

    @dg.asset(output_required=False)
    def model(context: dg.AssetExecutionContext):
        if context.run.tags.get("train") == "yes":
            yield dg.Output(None)

    @dg.asset_check(asset=model, blocking=True)
    def model_gate() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    @dg.asset_check(asset=events_by_day)
    def events_volume() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="few rows")

    @dg.asset
    def never_run() -> None:
        return None

    @dg.asset_check(asset=never_run)
    def never_run_check() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    defs = dg.Definitions(
        assets=[events_by_day, model, never_run], asset_checks=[model_gate, events_volume, never_run_check]
    )
    instance = dg.DagsterInstance.ephemeral()
    keys = daily.get_partition_keys()
    for key in keys[:3]:
        assert dg.materialize([events_by_day, events_volume], partition_key=key, instance=instance).success
    first = dg.materialize([model, model_gate], instance=instance, tags={"train": "yes"})
    second = dg.materialize([model, model_gate], instance=instance, tags={"train": "no"})
    assert first.success and second.success

    assets = {a["asset"]: a for a in status.asset_status(instance, {"test": defs})}
    assert assets["events_by_day"]["partitions"] == {"materialized": 3, "total": len(keys)}
    assert assets["events_by_day"]["last_materialized"]
    assert assets["model"]["partitions"] is None and assets["model"]["run_id"] == first.run_id
    assert assets["never_run"]["last_materialized"] is None

    checks = {c["check"]: c for c in status.check_status(instance, {"test": defs})}
    assert (
        checks["events_volume"]["result"] == "WARN" and checks["events_volume"]["description"] == "few rows"
    )
    gate = checks["model_gate"]
    assert gate["result"] == "PASS" and gate["run_id"] == first.run_id
    assert gate["not_evaluated_in_run"] == {"run_id": second.run_id, "state": "skipped"}
    assert checks["never_run_check"]["result"] == "NOT RUN"

    report = {
        "profile": "embedded",
        "hybrid_home": "/h",
        "dagster_home": "/h/dagster",
        "dagster_instance": "ok",
        "errors": {},
        "assets": list(assets.values()),
        "checks": list(checks.values()),
        "production_model": None,
        "endpoint": {"url": "http://x", "reachable": False, "ready": False, "responses": {}},
    }
    report["endpoint"]["responses"] = {"health": {"error": "unreachable"}, "ready": {"error": "not asked"}}
    report["problems"] = status._problems(report)
    text = status.render(report)
    assert f"3/{len(keys)} partitions" in text
    assert f"not evaluated in the latest run {second.run_id[:8]}: skipped" in text
    assert "never materialized: never_run" in " ".join(report["problems"])


def _job(name: str, fail: bool = False, wait_s: float = 0) -> dg.JobDefinition:
    """A one-op job under one of the platform's job names: the status reads runs by job name."""

    @dg.op(name=f"{name}_step")
    def step() -> None:
        time.sleep(wait_s)
        if fail:
            raise dg.Failure("it broke")

    @dg.job(name=name)
    def job() -> None:
        step()

    return job


def _home_instance(home: Path, monkeypatch) -> dg.DagsterInstance:
    """The persistent instance of ``home`` ($HYBRID_HOME/dagster), as `hybrid demo` creates it."""
    from core.settings import load_settings
    from hybrid_cli.platform import dagster_instance

    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))  # restored after the test
    with hybrid_env(home):
        return dagster_instance(load_settings())


def _origin(location: str, job: str):
    """Where a run launched by the webserver or the daemon says it comes from (its code location)."""
    from dagster._core.remote_origin import (
        RegisteredCodeLocationOrigin,
        RemoteJobOrigin,
        RemoteRepositoryOrigin,
    )

    code_location = RegisteredCodeLocationOrigin(location_name=location)
    repository = RemoteRepositoryOrigin(code_location_origin=code_location, repository_name="__repository__")
    return RemoteJobOrigin(repository_origin=repository, job_name=job)


def _start(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    at: float,
    event: str = "PIPELINE_START",
    location: str = "cloud",
) -> str:
    """A run record of ``job`` (launched from ``location``) that Dagster marked STARTED at ``at`` (as if its
    process died then); with ``event`` PIPELINE_ENQUEUED or PIPELINE_STARTING, QUEUED or STARTING instead."""
    run = instance.create_run_for_job(job, remote_job_origin=_origin(location, job.name))
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=event, job_name=job.name), run_id=run.run_id, timestamp=at
    )
    record = instance.get_run_record_by_id(run.run_id)
    assert record.dagster_run.status != dg.DagsterRunStatus.NOT_STARTED
    if event == "PIPELINE_START":
        assert record.dagster_run.status == dg.DagsterRunStatus.STARTED
        assert record.start_time == pytest.approx(at)
    return run.run_id


def test_strict_names_the_failed_latest_run_of_a_job_and_a_later_success_clears_it(tmp_path, monkeypatch):
    """The platform's cloud_refresh, run on a home with no data, fails at its first step: `--strict` exits 1
    and names the job, the run and when. A run of it still in progress does not clear that; a later
    successful run does."""
    from hybrid_cli.platform import run_location

    home = tmp_path / "home"
    instance = _home_instance(home, monkeypatch)
    with hybrid_env(home):
        outcome = run_location("cloud", instance)
    assert not outcome.success
    failed = instance.get_runs(dg.RunsFilter(job_name="cloud_refresh"))
    assert [r.status for r in failed] == [dg.DagsterRunStatus.FAILURE]
    failed_id = failed[0].run_id
    ended = _iso_of(instance, failed_id)

    url = _dead_url()
    done = hybrid_status(home, "--json", "--strict", "--url", url)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    jobs = {(j["location"], j["job"]): j for j in report["runs"]["jobs"]}
    assert set(jobs) == JOBS
    cloud = jobs["cloud", "cloud_refresh"]
    assert cloud["failed"] is True and cloud["latest"]["status"] == "FAILURE"
    assert cloud["latest"]["run_id"] == failed_id and cloud["latest"]["ended_at"] == ended
    assert "marketing_events" in cloud["latest"]["message"]  # the step that failed
    assert not [j for key, j in jobs.items() if key != ("cloud", "cloud_refresh") and j["failed"]]
    named = [p for p in report["problems"] if "cloud_refresh" in p]
    assert len(named) == 1 and failed_id in named[0] and "FAILURE" in named[0] and ended in named[0]
    text = hybrid_status(home, "--strict", "--url", url)
    assert text.returncode == 1 and "Traceback" not in text.stdout + text.stderr
    line = next(x for x in text.stdout.splitlines() if " cloud_refresh " in x)
    assert line.split()[:3] == ["cloud", "cloud_refresh", "FAILURE"] and failed_id[:8] in line, line
    assert f"attention: job cloud_refresh (cloud): latest finished run {failed_id} FAILURE" in text.stdout
    assert "jobs 1 failed, 0 stuck runs" in text.stdout

    # a new run of the job, still running: the failure stands
    locations = status.location_definitions()
    running = _start(instance, _job("cloud_refresh"), time.time())
    rows = {j["job"]: j for j in status.run_status(instance, locations, 3600)["jobs"]}
    assert rows["cloud_refresh"]["latest"]["run_id"] == running
    assert rows["cloud_refresh"]["latest"]["status"] == "STARTED"
    assert rows["cloud_refresh"]["failed"] and rows["cloud_refresh"]["latest_finished"]["run_id"] == failed_id
    # a later successful run of the job clears it
    assert _job("cloud_refresh").execute_in_process(instance=instance).success
    instance.dispose()
    done = hybrid_status(home, "--json", "--strict", "--url", url)
    report = json.loads(done.stdout)
    cloud = next(j for j in report["runs"]["jobs"] if j["job"] == "cloud_refresh")
    assert cloud["latest"]["status"] == "SUCCESS" and cloud["failed"] is False
    assert not [p for p in report["problems"] if "cloud_refresh" in p or failed_id in p]
    assert done.returncode == 1  # the home is still empty: nothing materialized, no model


def _iso_of(instance: dg.DagsterInstance, run_id: str) -> str:
    return status._iso(instance.get_run_record_by_id(run_id).end_time)


KILLED_RUN = """
import time
import dagster as dg

@dg.op
def wait_forever():
    time.sleep(600)

@dg.job(name="onprem_refresh")
def onprem_refresh():
    wait_forever()

onprem_refresh.execute_in_process(instance=dg.DagsterInstance.get())
"""


def test_a_killed_run_stays_started_and_is_reported_stuck_past_the_limit(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    instance = _home_instance(home, monkeypatch)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN],
        env={**os.environ, "DAGSTER_HOME": str(home / "dagster")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        started = dg.RunsFilter(job_name="onprem_refresh", statuses=[dg.DagsterRunStatus.STARTED])
        while not (runs := instance.get_runs(started)):
            assert proc.poll() is None and time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
    finally:
        proc.kill()  # kill -9: no chance to report anything
        proc.wait(timeout=30)
    killed = runs[0].run_id
    assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.STARTED  # forever, as Dagster sees it
    since = instance.get_run_record_by_id(killed).start_time

    monkeypatch.setenv("HYBRID_HOME", str(home))
    monkeypatch.setenv("HYBRID_PROFILE", "embedded")
    monkeypatch.setenv("HYBRID_S3_TIMEOUT_S", status.S3_TIMEOUT_S)
    url = _dead_url()
    # within the default limit (6 hours) it is a run in progress, not a problem
    assert status.main(url=url, as_json=True, strict=True) == 1  # the empty home has other problems
    report = json.loads(capsys.readouterr().out)
    row = next(j for j in report["runs"]["jobs"] if j["job"] == "onprem_refresh")
    assert row["latest"]["run_id"] == killed and row["latest"]["status"] == "STARTED" and not row["failed"]
    assert report["runs"]["stuck"] == [] and not [p for p in report["problems"] if killed in p]

    # past a 2-second limit it is stuck: named with its job, status and how long
    time.sleep(max(0.0, since + 2.5 - time.time()))
    assert status.main(url=url, as_json=True, strict=True, stuck_after="2s") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["runs"]["stuck_after_s"] == 2
    [stuck] = report["runs"]["stuck"]
    assert (stuck["run_id"], stuck["job"], stuck["status"]) == (killed, "onprem_refresh", "STARTED")
    assert stuck["for_s"] >= 2 and stuck["since"] == status._iso(since)
    [problem] = [p for p in report["problems"] if killed in p]
    assert problem.startswith(f"run {killed} of job onprem_refresh stuck: STARTED for ")
    assert status.main(url=url, strict=True, stuck_after="2s") == 1
    text = capsys.readouterr().out
    assert f"STARTED   onprem_refresh      run {killed}  for " in text
    assert "jobs 0 failed, 1 stuck runs" in text

    # the default limit, through the command: a run started 7 hours ago is stuck, the killed one is not
    old = _start(instance, _job("retrain"), time.time() - 7 * 3600)
    instance.dispose()
    done = hybrid_status(home, "--json", "--url", url)
    assert done.returncode == 0, done.stderr[-3000:]  # not --strict
    report = json.loads(done.stdout)
    assert [(s["run_id"], s["job"]) for s in report["runs"]["stuck"]] == [(old, "retrain")]
    assert 7 * 3600 <= report["runs"]["stuck"][0]["for_s"] < 7 * 3600 + 120
    [problem] = [p for p in report["problems"] if old in p]
    assert problem.startswith(f"run {old} of job retrain stuck: STARTED for 7 h")


def test_queued_and_starting_runs_count_as_stuck_not_started_records_do_not(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    job = _job("marketing_refresh")
    queued = _start(instance, job, time.time(), "PIPELINE_ENQUEUED")
    starting = _start(instance, job, time.time(), "PIPELINE_STARTING")
    instance.create_run_for_job(job)  # NOT_STARTED: created, never submitted
    done = _job("marketing_refresh").execute_in_process(instance=instance)
    locations = {"cloud": dg.Definitions(jobs=[job])}
    now = time.time()
    assert status.run_status(instance, locations, 3600, now=now)["stuck"] == []
    later = status.run_status(instance, locations, 3600, now=now + 2 * 3600)
    assert [(s["run_id"], s["status"]) for s in later["stuck"]] == [
        (queued, "QUEUED"),
        (starting, "STARTING"),
    ]
    [row] = [j for j in later["jobs"] if j["job"] == "marketing_refresh"]
    assert row["latest_finished"]["run_id"] == done.run_id and not row["failed"]


def test_canceled_runs_count_as_failed_and_each_location_has_its_own_asset_job():
    """A canceled latest run needs attention like a failed one. Both locations have an implicit
    __ASSET_JOB (UI materializations, the automation sensor): a run belongs to its code location's."""

    @dg.asset
    def a() -> None:
        return None

    instance = dg.DagsterInstance.ephemeral()
    job = _job("retrain")
    assert job.execute_in_process(instance=instance).success
    instance.report_run_canceled(instance.get_run_by_id(_start(instance, job, time.time())))
    failing = _job("onprem_refresh", fail=True)
    assert not failing.execute_in_process(instance=instance, raise_on_error=False).success
    asset_job = _job("__ASSET_JOB")
    cloud_failed = _start(instance, asset_job, time.time(), location="cloud")
    instance.report_run_failed(instance.get_run_by_id(cloud_failed))
    onprem_ok = _start(instance, asset_job, time.time(), location="onprem")
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name="__ASSET_JOB"), run_id=onprem_ok
    )
    locations = {
        "onprem": dg.Definitions(assets=[a], jobs=[failing]),
        "cloud": dg.Definitions(assets=[a], jobs=[job]),
    }
    rows = {(j["location"], j["job"]): j for j in status.run_status(instance, locations, 3600)["jobs"]}
    assert set(rows) == {
        ("onprem", "__ASSET_JOB"),
        ("onprem", "onprem_refresh"),
        ("cloud", "__ASSET_JOB"),
        ("cloud", "retrain"),
    }
    retrain, onprem = rows["cloud", "retrain"], rows["onprem", "onprem_refresh"]
    assert retrain["failed"] and retrain["latest"]["status"] == "CANCELED"
    assert onprem["failed"] and onprem["latest"]["status"] == "FAILURE"
    assert "onprem_refresh_step" in onprem["latest"]["message"]  # Dagster's summary names the failed step
    assert rows["cloud", "__ASSET_JOB"]["failed"]
    assert rows["cloud", "__ASSET_JOB"]["latest"]["run_id"] == cloud_failed
    assert not rows["onprem", "__ASSET_JOB"]["failed"]
    assert rows["onprem", "__ASSET_JOB"]["latest"]["run_id"] == onprem_ok


def _healthy_report(checks: list[dict]) -> dict:
    """A report where everything but ``checks`` is fine: materialized, a model, a ready endpoint."""
    return {
        "profile": "embedded",
        "hybrid_home": "/h",
        "dagster_home": "/h/dagster",
        "dagster_instance": "ok",
        "errors": {},
        "assets": [
            {
                "asset": "scores",
                "location": "test",
                "group": None,
                "last_materialized": "2026-01-01T00:00:00+00:00",
                "run_id": "r" * 36,
                "partitions": None,
            }
        ],
        "checks": checks,
        "runs": {"stuck_after_s": 3600, "jobs": [], "stuck": []},
        "production_model": {
            "version": "v1",
            "auc": 0.8,
            "recency_baseline_auc": None,
            "promoted_at": "2026-01-01T00:00:00+00:00",
            "reason": "first",
            "model_card": None,
        },
        "endpoint": {
            "url": "http://x",
            "reachable": True,
            "ready": True,
            "responses": {
                "health": {"status_code": 200, "body": {}},
                "ready": {"status_code": 200, "body": {}},
            },
        },
    }


def test_warn_checks_do_not_fail_strict_and_error_checks_are_named():
    @dg.asset
    def scores() -> None:
        return None

    @dg.asset_check(asset=scores)
    def few_rows() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, description="few")

    @dg.asset_check(asset=scores)
    def no_nulls() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, description="nulls")

    @dg.asset_check(asset=scores)
    def in_range() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([scores, few_rows, no_nulls, in_range], instance=instance)
    defs = dg.Definitions(assets=[scores], asset_checks=[few_rows, no_nulls, in_range])
    checks = {c["check"]: c for c in status.check_status(instance, {"test": defs})}
    assert {name: c["result"] for name, c in checks.items()} == {
        "few_rows": "WARN",
        "no_nulls": "FAIL",
        "in_range": "PASS",
    }

    report = _healthy_report([checks["few_rows"], checks["in_range"]])
    report["problems"] = status._problems(report)
    assert report["problems"] == []  # a warning alone: --strict exits 0
    assert "  WARN    WARN     no       scores.few_rows " in status.render(report)
    report = _healthy_report(list(checks.values()))
    assert status._problems(report) == [
        f"asset scores: check no_nulls failed (ERROR severity) at {checks['no_nulls']['evaluated_at']} "
        f"in run {result.run_id}"
    ]


def test_stuck_after_accepts_durations_and_rejects_anything_else(capsys):
    assert status.parse_duration("6h") == status.parse_duration(status.DEFAULT_STUCK_AFTER) == 6 * 3600
    assert (
        status.parse_duration("90m") == status.parse_duration("90min") == status.parse_duration("90") == 5400
    )
    assert status.parse_duration(" 1.5D ") == 1.5 * 86400 and status.parse_duration("45s") == 45
    assert status.parse_duration(120) == 120  # a number is seconds
    for bad in ("", "abc", "6x", "-1h", "0", "nan", "inf", "h"):
        with pytest.raises(ValueError, match="positive duration"):
            status.parse_duration(bad)
    assert status.main(stuck_after="soon") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'soon'" in err and "Traceback" not in err
