"""`hybrid status` (hybrid_assets/status.py): a materialized home, an empty home, and the status logic on a
small instance with a partitioned asset, a warning and a skipped check."""

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from hybrid_assets import status
from tests.conftest import free_port, running_server
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


def hybrid_status(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYBRID_HOME": str(home), "HYBRID_PROFILE": "embedded"}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "hybrid_assets.cli", "status", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


def _copy_instance(source: dg.DagsterInstance, target: dg.DagsterInstance) -> None:
    for run in source.get_runs():
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
    from hybrid_assets.platform import DAGSTER_YAML

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
    as_json = hybrid_status(home, "--json", "--url", url, "--strict")
    assert as_json.returncode == 1  # --strict: nothing is materialized
    report = json.loads(as_json.stdout)
    assert {a["asset"] for a in report["assets"]} == ONPREM_ASSETS | CLOUD_ASSETS
    assert all(a["last_materialized"] is None for a in report["assets"])
    assert {c["result"] for c in report["checks"]} == {"NOT RUN"} and len(report["checks"]) == 12
    assert report["production_model"] is None and not report["endpoint"]["reachable"]
    assert "no production model" in report["problems"]
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
