"""The hybrid profile against real services (PostgreSQL, the S3 API of moto_server, Redis) from
`make services`: the same graph, the residency promise, credentials hygiene, and faults.

Each module run gets its own PostgreSQL database, bucket and Redis database, and reaches each server through a
proxy of its own: an outage test stops the proxy, not the server, so the other modules that use the servers run
at the same time. Under CI=true these tests never skip: a missing service is a failure.
"""

import io
import os
import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlparse

import httpx
import pytest

from core import catalog
from core.contracts import CUSTOMERS
from core.settings import REPO_ROOT
from tests.conftest import (
    SHORT_DAYS,
    SHORT_LABELS,
    build_platform,
    hybrid_env,
    persistent_instance,
    running_server,
)
from tests.residency_scan import (
    delete_planted,
    leaks,
    parquet_text,
    pii_values,
    planted_customers,
    postgres_texts,
    texts_of,
)
from tests.services import private_database, redis_client, services, with_db
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.hybrid
REDIS_TEST_DB = 1


@pytest.fixture(scope="module")
def onprem_database():
    with private_database("onprem_t") as database:
        yield database


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory, onprem_database):
    import boto3

    svc = services()
    bucket = f"hybrid-t{uuid.uuid4().hex[:8]}"
    database = onprem_database
    s3 = boto3.client(
        "s3",
        endpoint_url=svc["HYBRID_S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=svc["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=svc["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=bucket)
    redis_client(with_db(svc["HYBRID_REDIS_URL"], str(REDIS_TEST_DB))).flushdb()
    # The platform reaches each server through a proxy an outage test can stop: for the client that is exactly
    # a server going away (connections reset, new ones refused), while the servers `make services` shares with
    # the other test modules, which run at the same time on other workers, stay up.
    proxies = {name: TcpProxy(_address(svc[name])).start() for name in PROXIED}
    env = {
        **svc,
        "HYBRID_S3_ENDPOINT": _through(svc["HYBRID_S3_ENDPOINT"], proxies["HYBRID_S3_ENDPOINT"]),
        "HYBRID_PROFILE": "hybrid",
        "HYBRID_ONPREM_DSN": with_db(
            _through(svc["HYBRID_ONPREM_DSN"], proxies["HYBRID_ONPREM_DSN"]), database
        ),
        "HYBRID_S3_BUCKET": bucket,
        "HYBRID_REDIS_URL": with_db(
            _through(svc["HYBRID_REDIS_URL"], proxies["HYBRID_REDIS_URL"]), str(REDIS_TEST_DB)
        ),
        "HYBRID_S3_TIMEOUT_S": "3",
        # these tests are about the servers: the short label definition on SHORT_DAYS of history (conftest.py)
        **SHORT_LABELS,
    }
    home = tmp_path_factory.mktemp("hybrid")
    with hybrid_env(home, **env):
        platform = build_platform(home, customers=3000, days=SHORT_DAYS, env=env)
        platform.svc, platform.bucket, platform.s3 = svc, bucket, s3
        platform.s3_proxy = proxies["HYBRID_S3_ENDPOINT"]
        platform.pg_proxy = proxies["HYBRID_ONPREM_DSN"]
        platform.redis_proxy = proxies["HYBRID_REDIS_URL"]
        yield platform
    for proxy in proxies.values():
        proxy.stop()


PROXIED = ("HYBRID_S3_ENDPOINT", "HYBRID_ONPREM_DSN", "HYBRID_REDIS_URL")


def _address(url: str) -> tuple[str, int]:
    parts = urlparse(url)
    return parts.hostname, parts.port


def _through(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's (user, password and path kept)."""
    parts = urlparse(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{credentials}127.0.0.1:{proxy.port}").geturl()


@contextmanager
def _outage(proxy: TcpProxy):
    """The server behind ``proxy`` goes away for the block and comes back on the same address after it."""
    proxy.stop()
    try:
        yield
    finally:
        proxy.start()


def test_the_same_graph_runs_on_the_real_services(hybrid):
    checks = hybrid.onprem.checks + hybrid.cloud.checks
    assert len(checks) == 12 and not [c for c in checks if c.status == "FAIL"]
    wh = hybrid.warehouse()
    assert type(wh).__name__ == "PostgresWarehouse"
    assert wh.scalar("select count(*) from platform.customer_features") > 0
    keys = {o["Key"] for o in hybrid.s3.list_objects_v2(Bucket=hybrid.bucket)["Contents"]}
    assert {catalog.LABELS_EXPORT_KEY, *catalog.VIEW_OFFLINE_KEY.values()} <= keys
    for prefix in catalog.VIEW_SOURCE_KEY.values():  # one object per day
        assert len([k for k in keys if k.startswith(prefix)]) >= SHORT_DAYS - 1
    assert any(k.startswith("models/churn_model/versions/") for k in keys)
    assert redis_client(hybrid.env["HYBRID_REDIS_URL"]).dbsize() > 0


def _pii(hybrid) -> list[str]:
    """Every PII value of the source customers (the columns the contract declares PII)."""
    columns = ", ".join(f"cast({c} as varchar) as {c}" for c in CUSTOMERS.pii)
    people = hybrid.warehouse().query(f"select {columns} from customers")
    return sorted({v for c in CUSTOMERS.pii for v in people[c].to_list() if v})


def _text_of_object(key: str, body: bytes) -> str:
    return parquet_text(io.BytesIO(body)) if key.endswith(".parquet") else body.decode("latin-1")


def _cloud_texts(hybrid) -> dict[str, str]:
    """What the cloud side holds, as text: every object of the bucket (Parquet decoded too), the Feast
    registry and every Redis key and value."""
    haystacks: dict[str, str] = {}
    keys = [
        o["Key"]
        for page in hybrid.s3.get_paginator("list_objects_v2").paginate(Bucket=hybrid.bucket)
        for o in page.get("Contents", [])
    ]
    assert set(catalog.VIEW_OFFLINE_KEY.values()) <= set(keys)
    for key in keys:
        body = hybrid.s3.get_object(Bucket=hybrid.bucket, Key=key)["Body"].read()
        haystacks[f"s3://{hybrid.bucket}/{key}"] = _text_of_object(key, body)
    haystacks["feast registry"] = (hybrid.home / "feast" / "registry.db").read_bytes().decode("latin-1")
    r = redis_client(hybrid.env["HYBRID_REDIS_URL"])
    redis_text = []
    for key in r.scan_iter(count=1000):
        redis_text.append(key.decode("latin-1"))
        kind = r.type(key).decode()
        if kind == "hash":
            redis_text += [f"{k.decode('latin-1')}={v.decode('latin-1')}" for k, v in r.hgetall(key).items()]
        elif kind == "string":
            redis_text.append(r.get(key).decode("latin-1"))
    haystacks["redis"] = "\n".join(redis_text)
    assert len(haystacks) > 8 and len(haystacks["redis"]) > 1000
    return haystacks


def test_pii_rows_quarantined_or_failing_an_expectation_never_leave_the_warehouse(hybrid, monkeypatch):
    """Residency through the orchestrator, on the real services: customers with PII are quarantined, an
    on-prem step fails quoting a row, a PII-column expectation fails; none of their values is then in Dagster's
    PostgreSQL storage, the compute logs, the bucket, the Feast registry or Redis."""
    from hybrid_assets.onprem.residency import STEP_ERRORS_TABLE

    wh = hybrid.warehouse()
    quarantined, bad_email = planted_customers(wh, uuid.uuid4().hex[:6])
    values = pii_values(quarantined) + pii_values(bad_email)
    wh.append("customers", quarantined)
    try:
        with persistent_instance(hybrid) as instance:
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            onprem = hybrid.run("onprem", instance=instance)
            assert onprem.success, onprem.step_failures
            warn = next(c for c in onprem.checks if c.check == "customers_contract")
            assert warn.status == "WARN" and "null signup_date" in warn.description
            assert hybrid.run("cloud", instance=instance).success

            # the two runs below are about one failure each: the newest day is enough
            newest = (hybrid.arrival_days()[1],) * 2
            leaked = quarantined.row(0, named=True)

            def quoting_a_row(*args, **kwargs):
                raise ValueError(f"cannot compute features for {leaked['full_name']!r} <{leaked['email']}>")

            monkeypatch.setattr(catalog, "compute_features", quoting_a_row)
            failed = hybrid.run("onprem", days=newest, instance=instance)
            monkeypatch.undo()
            failure = next(f for f in failed.step_failures if f.startswith("customer_features"))
            assert "ValueError in customer_features" in failure, failure
            error_id = failure.split("`hybrid errors ")[1].split("`")[0]

            wh.append("customers", bad_email)
            blocked = hybrid.run("onprem", days=newest, instance=instance)
            gate = next(c for c in blocked.checks if c.check == "customers_contract")
            assert gate.status == "FAIL" and "on email: 1 unexpected" in gate.description, gate.description
    finally:
        delete_planted(wh, quarantined.vstack(bad_email))
    texts = postgres_texts(hybrid.env["HYBRID_DAGSTER_PG_URL"])
    events = texts["postgres:event_logs"]
    assert "<redacted: email>" in events and f"hybrid errors {error_id}" in events  # the channels were used
    texts.update({f"dagster/{k}": v for k, v in texts_of(hybrid.home / "dagster").items()})
    assert [k for k in texts if "/compute_logs/" in k], "no compute logs were captured"
    texts.update(_cloud_texts(hybrid))
    assert not leaks(texts, values)
    # on-prem, the full error is kept next to the data
    kept = wh.query(f"select message from {STEP_ERRORS_TABLE} where error_id = ?", [error_id])
    assert leaked["email"] in kept["message"][0]


def test_no_pii_in_the_bucket_the_feast_registry_redis_or_the_models(hybrid):
    """The residency promise: no customer's name, email, phone or birth date outside the warehouse."""
    pii = _pii(hybrid)
    assert len(pii) > 3 * 2000
    # full names come from a small list of first and last names: search them whole, with their separator
    for where, text in _cloud_texts(hybrid).items():
        found = [value for value in pii if value in text]
        assert not found, f"PII found in {where}: {found[:5]}"


def test_cloud_location_resources_carry_no_onprem_connection(hybrid):
    from hybrid_assets.cloud.definitions import defs as cloud_defs
    from hybrid_assets.onprem.definitions import defs as onprem_defs

    with hybrid_env(hybrid.home, **hybrid.env):
        cloud, onprem = cloud_defs(), onprem_defs()
    text = repr(cloud.resources)
    assert "warehouse" not in cloud.resources and "HYBRID_ONPREM_DSN" not in text
    assert urlparse(hybrid.env["HYBRID_ONPREM_DSN"]).port.__str__() not in text
    assert "HYBRID_ONPREM_DSN" in repr(onprem.resources["warehouse"])  # the on-prem side does hold it


def _secrets(hybrid) -> list[str]:
    pg = urlparse(hybrid.env["HYBRID_ONPREM_DSN"]).password
    redis_pw = urlparse(hybrid.env["HYBRID_REDIS_URL"]).password
    return [pg, redis_pw, hybrid.env["AWS_SECRET_ACCESS_KEY"]]


def test_credentials_never_appear_in_code_logs_metadata_or_registry(hybrid):
    secrets = _secrets(hybrid)
    assert all(len(s) >= 16 for s in secrets)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.split()
    places = {f: (REPO_ROOT / f).read_bytes().decode("latin-1") for f in tracked if (REPO_ROOT / f).is_file()}
    places["feast registry"] = (hybrid.home / "feast" / "registry.db").read_bytes().decode("latin-1")
    places["feature_store.yaml"] = (hybrid.home / "feast" / "feature_store.yaml").read_text()
    for record in hybrid.instance.get_run_records():
        logs = hybrid.instance.all_logs(record.dagster_run.run_id)
        places[f"run {record.dagster_run.run_id}"] = "\n".join(repr(e) for e in logs) + repr(
            record.dagster_run
        )
    with running_server(hybrid.home, env=hybrid.env) as base:
        httpx.post(f"{base}/predict", json={"customer_id": 1})
    for log in hybrid.home.glob("serve-*.log"):
        places[log.name] = log.read_text()
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"a credential appears in {where}"


def test_endpoint_answers_503_while_redis_is_down_and_recovers_by_itself(hybrid):
    customer = int(hybrid.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)["customer_id"][0])
    with running_server(hybrid.home, env=hybrid.env) as base:
        assert httpx.post(f"{base}/predict", json={"customer_id": customer}).status_code == 200
        with _outage(hybrid.redis_proxy):  # Redis goes away
            for path in ("/ready", "/predict", "/predict"):
                resp = (
                    httpx.get(f"{base}{path}", timeout=30)
                    if path == "/ready"
                    else httpx.post(f"{base}{path}", json={"customer_id": customer}, timeout=30)
                )
                assert resp.status_code == 503, resp.text
                port = urlparse(hybrid.env["HYBRID_REDIS_URL"]).port
                assert f"Redis at 127.0.0.1:{port}" in resp.json()["detail"]
                assert "Traceback" not in resp.text
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            status = httpx.post(f"{base}/predict", json={"customer_id": customer}, timeout=30).status_code
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200
        assert httpx.get(f"{base}/ready").status_code == 200


def test_s3_outage_fails_the_step_naming_the_endpoint_and_a_rerun_completes(hybrid):
    """The S3 endpoint goes away: the export fails after its retries with an error naming the endpoint, the
    previous export stays whole, and once the endpoint is back a rerun completes."""
    objects = hybrid.object_store()
    before = objects.checksums(catalog.ACTIVITY_EXPORT_KEY)
    last = hybrid.arrival_days()[1]
    hybrid.generator().append(days=1)  # new data, so the rerun really writes a new day
    new_days = (last, hybrid.arrival_days()[1])  # what the sensor requests for the new rows
    with _outage(hybrid.s3_proxy):
        outcome = hybrid.run("onprem", days=new_days)
    assert not outcome.success
    failures = " ".join(outcome.step_failures)
    assert hybrid.env["HYBRID_S3_ENDPOINT"] in failures, failures
    assert objects.checksums(catalog.ACTIVITY_EXPORT_KEY) == before  # every day's object as it was
    again = hybrid.run("onprem", days=new_days)
    assert again.success, again.step_failures
    after = objects.checksums(catalog.ACTIVITY_EXPORT_KEY)
    assert set(after) > set(before)  # the new day crossed
    assert {k: after[k] for k in before if after[k] == before[k]}, "older days keep their objects"
    assert hybrid.run("cloud").success  # Feast reads the new export through the same endpoint


def test_postgres_outage_fails_naming_the_warehouse_and_a_rerun_completes(hybrid):
    with _outage(hybrid.pg_proxy):
        outcome = hybrid.run("onprem")
    assert not outcome.success
    port = urlparse(hybrid.env["HYBRID_ONPREM_DSN"]).port
    assert f"PostgreSQL warehouse at 127.0.0.1:{port}" in " ".join(outcome.step_failures)
    assert all(s not in " ".join(outcome.step_failures) for s in _secrets(hybrid))
    assert hybrid.run("onprem").success


def test_redis_outage_fails_the_online_load_naming_redis_and_a_rerun_completes(hybrid):
    production = hybrid.registry().production()
    with _outage(hybrid.redis_proxy):
        outcome = hybrid.run("cloud")
    assert not outcome.success
    port = urlparse(hybrid.env["HYBRID_REDIS_URL"]).port
    failure = next(f for f in outcome.step_failures if f.startswith("online_features"))
    assert f"Redis at 127.0.0.1:{port}" in failure
    assert all(s not in failure for s in _secrets(hybrid))
    assert hybrid.registry().production() == production  # nothing half-deployed in between
    time.sleep(1)
    again = hybrid.run("cloud")
    assert again.success, again.step_failures


def test_dagster_storage_is_postgres(hybrid):
    from hybrid_cli.platform import dagster_instance

    last = hybrid.arrival_days()[1]
    newest = (last - timedelta(days=4), last)  # five days: the run is about where it is recorded, and how
    saved = os.environ.get("DAGSTER_HOME")
    try:
        with hybrid_env(hybrid.home, **hybrid.env):
            instance = dagster_instance(hybrid.settings)
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            from hybrid_cli.platform import run_location

            with _counting_connections() as connects:
                outcome = run_location("onprem", instance, days=newest)
        assert outcome.success
        runs = instance.get_runs(limit=1)
        assert runs and runs[0].job_name == "onprem_refresh"
        # the process holds its connections to Dagster's database: about 20 for these five days, not 300 (without
        # the pool Dagster's storage connects for most calls: dozens per partition)
        assert len(connects) < 50, len(connects)
        assert (
            hybrid.env["HYBRID_DAGSTER_PG_URL"] not in (hybrid.home / "dagster" / "dagster.yaml").read_text()
        )
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved


@contextmanager
def _counting_connections():
    """A list that gets one entry per psycopg2 connection opened in the block: SQLAlchemy's, so Dagster's
    storage's (the warehouse client uses psycopg 3 and ADBC)."""
    import psycopg2

    opened, connect = [], psycopg2.connect

    def counted(*args, **kwargs):
        opened.append(None)
        return connect(*args, **kwargs)

    psycopg2.connect = counted
    try:
        yield opened
    finally:
        psycopg2.connect = connect


# -- the online-store loader against Feast's materialize (resources/online_loader.py) --------------------
def test_loader_and_materialize_write_identical_bytes_and_read_back_the_same(hybrid, tmp_path):
    """Feast's materialize and the loader each load the platform's feature views, from the same export and
    over the same window, into an empty Redis database of their own; both must hold the same bytes.
    (Comparing with the platform's own database would compare with an earlier export: the outage tests rerun
    the graph, and a rerun's event times are the same, so neither Feast nor the loader rewrites them.)"""
    import redis

    from resources.online_loader import load_view

    base_url = hybrid.env["HYBRID_REDIS_URL"]
    feast_url, ours_url = with_db(base_url, "3"), with_db(base_url, "4")
    feast_db, ours_db = redis.Redis.from_url(feast_url), redis.Redis.from_url(ours_url)
    feast_db.flushdb()
    ours_db.flushdb()
    objects = hybrid.object_store()
    spine = objects.read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.EVENT_TS])
    start = spine[catalog.EVENT_TS].min() - timedelta(seconds=1)
    end = spine[catalog.EVENT_TS].max() + timedelta(seconds=1)
    reference = _store_on(hybrid, feast_url)
    reference.materialize(start_date=start, end_date=end)
    ours = _store_on(hybrid, ours_url)
    for view, key in catalog.VIEW_SOURCE_KEY.items():
        report = load_view(ours, view, objects.iter_batches(key), start=start, end=end)
        assert report.written > 1000

    keys = sorted(feast_db.scan_iter(count=5000))
    assert len(keys) > 1000
    assert set(keys) == set(ours_db.scan_iter(count=5000))
    p1, p2 = feast_db.pipeline(transaction=False), ours_db.pipeline(transaction=False)
    for key in keys:
        p1.hgetall(key)
        p2.hgetall(key)
    assert p1.execute() == p2.execute()

    service = ours.get_feature_service(catalog.FEATURE_SERVICE)
    rows = [{catalog.ENTITY_KEY: i} for i in range(0, 3000, 7)]
    assert (
        ours.get_online_features(features=service, entity_rows=rows).to_dict()
        == reference.get_online_features(features=service, entity_rows=rows).to_dict()
    )
    feast_db.flushdb()
    ours_db.flushdb()


def test_reload_writes_nothing_and_an_older_window_never_overwrites_newer_values(hybrid):
    import redis

    from resources.online_loader import load_view

    url = hybrid.env["HYBRID_REDIS_URL"]
    db = redis.Redis.from_url(url)
    keys = sorted(db.scan_iter(count=5000))
    before = [db.hgetall(k) for k in keys[:300]]
    store = _store_on(hybrid, url)
    objects = hybrid.object_store()
    again = load_view(store, catalog.ACTIVITY_VIEW, objects.iter_batches(catalog.ACTIVITY_EXPORT_KEY))
    assert again.rows > 0 and again.written == 0  # same event times: Feast's rule skips them
    spine = objects.read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.EVENT_TS])
    first_snapshot = spine[catalog.EVENT_TS].min()
    older = load_view(
        store,
        catalog.ACTIVITY_VIEW,
        objects.iter_batches(catalog.ACTIVITY_EXPORT_KEY),
        start=first_snapshot,
        end=first_snapshot,
    )
    assert older.rows > 0 and older.written == 0
    assert [db.hgetall(k) for k in keys[:300]] == before


def _store_on(hybrid, redis_url: str):
    from resources.feature_store import open_feature_store

    with hybrid_env(hybrid.home, **hybrid.env):
        return open_feature_store(hybrid.home, "hybrid", redis_url)


# -- the serving fast path (serving/app.py RedisFeatureReader) -------------------------------------------
def test_fast_path_answers_equal_get_online_features_and_booster_predict_to_the_bit(hybrid):
    """Whatever the fast path does, /predict must equal the plain path: Feast's get_online_features with
    the feature service, then Booster.predict, one customer at a time and in a batch."""
    import lightgbm as lgb
    import numpy as np

    registry = hybrid.registry()
    version = registry.production()["version"]
    booster = lgb.Booster(model_str=registry.model_text(version))
    features = registry.metadata(version)["features"]
    store = _store_on(hybrid, hybrid.env["HYBRID_REDIS_URL"])
    service = store.get_feature_service(catalog.FEATURE_SERVICE)
    ids = list(range(0, 3000, 37)) + [10**9]  # and one customer nobody has heard of
    known = ids[:-1]
    plain = store.get_online_features(features=service, entity_rows=[{catalog.ENTITY_KEY: i} for i in known])
    values = plain.to_dict()
    served = [i for n, i in enumerate(known) if any(values[f][n] is not None for f in features)]
    assert len(served) > 40
    with running_server(hybrid.home, env=hybrid.env) as base:
        singles = [httpx.post(f"{base}/predict", json={"customer_id": i}) for i in known]
        batch = httpx.post(f"{base}/predict/batch", json={"customer_ids": served}).json()
        unknown = httpx.post(f"{base}/predict", json={"customer_id": ids[-1]})
    assert unknown.status_code == 404
    by_id = {b["customer_id"]: b for b in batch}
    for n, (i, response) in enumerate(zip(known, singles, strict=True)):
        row = [values[f][n] for f in features]
        if i not in by_id:
            assert response.status_code == 404
            continue
        assert response.status_code == 200, response.text
        expected = float(booster.predict(np.array([row], dtype=float))[0])
        answer = response.json()
        assert answer["churn_probability"] == expected  # bit-exact: JSON floats round-trip
        assert by_id[i]["churn_probability"] == expected
        assert answer["features"] == {f: values[f][n] for f in features}
        assert answer["model_version"] == version


def test_metrics_access_logs_and_a_hot_deploy_under_load_drop_nothing(hybrid):
    """Prometheus /metrics counts what happened; every request leaves one JSON access-log line; a model
    promoted while clients hammer the endpoint is picked up with zero failed requests."""
    import json
    import threading

    import lightgbm as lgb

    registry = hybrid.registry()
    original = registry.production()["version"]
    booster = lgb.Booster(model_str=registry.model_text(original))
    second, _ = registry.register(
        booster.model_to_string(num_iteration=max(5, booster.num_trees() // 3)),
        {**registry.metadata(original), "note": "test: hot deploy under load"},
    )
    statuses: list[int] = []
    versions: set[str] = set()
    with running_server(hybrid.home, poll_seconds=0.3, env=hybrid.env) as base:
        stop = threading.Event()

        def client(seed: int):
            with httpx.Client(base_url=base, timeout=10) as http:
                n = seed
                while not stop.is_set():
                    try:
                        r = http.post("/predict", json={"customer_id": n % 3000})
                        statuses.append(r.status_code)
                        if r.status_code == 200:
                            versions.add(r.json()["model_version"])
                    except httpx.HTTPError:
                        statuses.append(-1)
                    n += 7

        threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            registry.promote(second, reason="test: deploy under load")
            time.sleep(1.5)
            registry.promote(original, reason="test: restore")
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        metrics = httpx.get(f"{base}/metrics").text
    log_lines = [
        json.loads(line)
        for log in hybrid.home.glob("serve-*.log")
        for line in log.read_text().splitlines()
        if line.startswith("{") and '"access"' in line
    ]
    assert {second, original} <= versions, versions  # both models answered during the run
    assert statuses and set(statuses) <= {200, 404}, sorted(set(statuses))  # no 5xx, no dropped request
    assert statuses.count(200) > 100
    assert 'hybrid_requests_total{method="POST",path="/predict",status="200"}' in metrics
    assert "hybrid_request_duration_seconds_bucket" in metrics
    assert f'hybrid_model_info{{version="{original}"}} 1.0' in metrics
    assert "hybrid_model_swaps_total" in metrics
    assert 'hybrid_feature_latest_event_timestamp_seconds{feature_view="customer_activity"}' in metrics
    predicts = [e for e in log_lines if e["path"] == "/predict"]
    assert len(predicts) >= len(statuses)  # one line per request (earlier tests' servers log too)
    entry = predicts[-1]
    assert {"ts", "method", "status", "duration_ms", "request_id", "model_version"} <= set(entry)
    assert all(hybrid.env["HYBRID_REDIS_URL"].split("@")[0] not in json.dumps(e) for e in log_lines)


def test_the_first_request_after_redis_goes_away_is_a_503_within_a_second(hybrid):
    """The serving Redis client has 0.5 s timeouts and no retry loop: the first request after Redis went
    away waits neither for retries nor for backoff (a client with Feast's defaults took 6-10 s)."""
    customer = int(hybrid.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)["customer_id"][0])
    port = urlparse(hybrid.env["HYBRID_REDIS_URL"]).port
    with running_server(hybrid.home, env=hybrid.env) as base, httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/predict", json={"customer_id": customer}).status_code == 200  # a pooled connection
        with _outage(hybrid.redis_proxy):
            timings = []
            for path in ("/predict", "/predict", "/ready"):
                began = time.monotonic()
                resp = http.get(path) if path == "/ready" else http.post(path, json={"customer_id": customer})
                timings.append(time.monotonic() - began)
                assert resp.status_code == 503, resp.text
                assert f"Redis at 127.0.0.1:{port}" in resp.json()["detail"]
            assert max(timings) < 1.5, timings
        deadline = time.monotonic() + 30
        while http.post("/predict", json={"customer_id": customer}).status_code != 200:
            assert time.monotonic() < deadline, "the endpoint did not recover"
            time.sleep(0.3)
