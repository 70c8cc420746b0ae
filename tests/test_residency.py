"""Residency through the orchestrator, embedded profile: customers with PII are quarantined, an on-prem step
fails with an error that quotes a row, and an expectation on a PII column fails; afterwards none of their
values is anywhere outside the on-prem warehouse: not in Dagster's run and event storage, its schedules, the
compute logs, the object store or the feature store. The full rows stay on-prem, where `hybrid quarantine`
and `hybrid errors` show them. (The hybrid profile's version, with Dagster on PostgreSQL, is in
tests/test_hybrid.py.)"""

import json
import os
import subprocess
import sys
import uuid

import pytest

from core import catalog
from resources.warehouse import QUARANTINE_TABLE
from tests.conftest import SHORT_DAYS, SHORT_LABELS, build_platform, persistent_instance
from tests.residency_scan import leaks, pii_values, planted_customers, texts_of


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    platform = build_platform(
        tmp_path_factory.mktemp("residency"), customers=3000, days=SHORT_DAYS, run=False, env=SHORT_LABELS
    )
    with persistent_instance(platform) as instance:
        platform.instance = instance
        yield platform


def _cli(platform, *args: str) -> str:
    env = {**os.environ, **platform.env, "HYBRID_HOME": str(platform.home), "HYBRID_PROFILE": "embedded"}
    done = subprocess.run(
        [sys.executable, "-m", "hybrid_cli.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_pii_reaches_dagster_the_logs_or_the_cloud(audited, monkeypatch):
    wh = audited.warehouse()
    tag = uuid.uuid4().hex[:6]
    quarantined, bad_email = planted_customers(wh, tag)
    values = pii_values(quarantined) + pii_values(bad_email)
    wh.append("customers", quarantined)

    # 1. the whole graph runs with PII rows quarantined; the gate warns and samples keys and reasons
    onprem = audited.run("onprem")
    assert onprem.success, onprem.step_failures
    check = next(c for c in onprem.checks if c.check == "customers_contract")
    assert check.status == "WARN", check.description
    assert "null signup_date" in check.description and "duplicate key" in check.description
    assert audited.run("cloud").success

    # 2. an on-prem step fails with an error that quotes a row, as a driver's or Polars' message would
    leaked = quarantined.row(0, named=True)

    def quoting_a_row(*args, **kwargs):
        raise ValueError(f"cannot compute features for {leaked['full_name']!r} <{leaked['email']}>")

    monkeypatch.setattr(catalog, "compute_features", quoting_a_row)
    failed = audited.run("onprem")
    monkeypatch.undo()
    assert not failed.success
    failure = next(f for f in failed.step_failures if f.startswith("customer_features"))
    assert "ValueError in customer_features" in failure and "row values redacted" in failure, failure
    error_id = failure.split("`hybrid errors ")[1].split("`")[0]

    # 3. an expectation on a PII column fails: counts, never values
    wh.append("customers", bad_email)
    blocked = audited.run("onprem")
    assert not blocked.success
    gate = next(c for c in blocked.checks if c.check == "customers_contract")
    assert gate.status == "FAIL"
    assert "expect_column_values_to_match_regex on email: 1 unexpected" in gate.description, gate.description
    assert "<redacted: email>" in gate.description

    # the scan: Dagster's storage (runs, event logs, schedules), compute logs, object store, feature store
    dagster_home = audited.home / "dagster"
    texts = {}
    for folder in (dagster_home, audited.home / "object_store", audited.home / "feast"):
        texts.update({f"{folder.name}/{k}": v for k, v in texts_of(folder).items()})
    assert [k for k in texts if "/compute_logs/" in k and k.endswith(".err")], "no compute logs were captured"
    events = "\n".join(v for k, v in texts.items() if "event_logs" in k)
    # the channels were exercised: the redacted sample and the scrubbed error are in the event log
    assert "<redacted: full_name>" in events and "null signup_date" in events
    assert f"hybrid errors {error_id}" in events
    assert not leaks(texts, values)

    # the full rows stay on-prem, for the people who may see them there
    kept = wh.query(f"select row_json from {QUARANTINE_TABLE} where source_table = 'customers'")
    emails = {json.loads(r)["email"] for r in kept["row_json"]}
    assert set(quarantined["email"]) <= emails
    shown = _cli(audited, "quarantine", "--table", "customers", "--show", "20")
    assert all(email in shown for email in quarantined["email"]), shown
    assert leaked["email"] in _cli(audited, "errors", error_id)
