"""The hybrid profile against real services (PostgreSQL, the S3 API of moto_server, Redis) from
`make services`: the same graph, the residency promise, credentials hygiene, and faults.

Each module run gets its own PostgreSQL database, bucket and Redis database. Under CI=true these tests
never skip: a missing service is a failure.
"""

import io
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx
import polars as pl
import pytest

from hybrid_assets import catalog
from hybrid_assets.settings import REPO_ROOT, _read_env_file
from tests.conftest import build_platform, hybrid_env, running_server
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.hybrid
SERVICES_HOME = REPO_ROOT / ".hybrid"
REDIS_TEST_DB = 1


def _services() -> dict[str, str]:
    path = Path(os.environ.get("HYBRID_SERVICES_ENV", SERVICES_HOME / "services.env"))
    if not path.exists():
        message = f"{path} not found: run `make services` first"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return _read_env_file(path)


def _with_db(url: str, db: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{db}"))


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=3)


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    import boto3
    import psycopg

    svc = _services()
    tag = uuid.uuid4().hex[:8]
    database, bucket = f"onprem_t{tag}", f"hybrid-t{tag}"
    try:
        with psycopg.connect(svc["HYBRID_ONPREM_DSN"], autocommit=True) as con:
            con.execute(f"create database {database}")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL from services.env is not reachable ({exc}); run `make services`")
    s3 = boto3.client(
        "s3",
        endpoint_url=svc["HYBRID_S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=svc["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=svc["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=bucket)
    redis_url = _with_db(svc["HYBRID_REDIS_URL"], str(REDIS_TEST_DB))
    _redis(redis_url).flushdb()
    # the platform reaches S3 through a proxy the outage test can stop, like a server going away
    upstream = urlparse(svc["HYBRID_S3_ENDPOINT"])
    proxy = TcpProxy((upstream.hostname, upstream.port)).start()
    env = {
        **svc,
        "HYBRID_S3_ENDPOINT": f"http://127.0.0.1:{proxy.port}",
        "HYBRID_PROFILE": "hybrid",
        "HYBRID_ONPREM_DSN": _with_db(svc["HYBRID_ONPREM_DSN"], database),
        "HYBRID_S3_BUCKET": bucket,
        "HYBRID_REDIS_URL": redis_url,
        "HYBRID_S3_TIMEOUT_S": "3",
    }
    home = tmp_path_factory.mktemp("hybrid")
    with hybrid_env(home, **env):
        platform = build_platform(home, customers=3000, days=150, env=env)
        platform.svc, platform.bucket, platform.s3, platform.s3_proxy = svc, bucket, s3, proxy
        yield platform
    proxy.stop()
    with psycopg.connect(svc["HYBRID_ONPREM_DSN"], autocommit=True) as con:
        con.execute(f"drop database if exists {database} with (force)")


def test_the_same_graph_runs_on_the_real_services(hybrid):
    checks = hybrid.onprem.checks + hybrid.cloud.checks
    assert len(checks) == 12 and not [c for c in checks if c.status == "FAIL"]
    wh = hybrid.warehouse()
    assert type(wh).__name__ == "PostgresWarehouse"
    assert wh.scalar("select count(*) from platform.customer_features") > 0
    keys = {o["Key"] for o in hybrid.s3.list_objects_v2(Bucket=hybrid.bucket)["Contents"]}
    assert {catalog.ACTIVITY_EXPORT_KEY, catalog.LABELS_EXPORT_KEY, catalog.ENGAGEMENT_KEY} <= keys
    assert any(k.startswith("models/churn_model/versions/") for k in keys)
    assert _redis(hybrid.env["HYBRID_REDIS_URL"]).dbsize() > 0


def _pii(hybrid) -> list[str]:
    people = hybrid.warehouse().query(
        "select full_name, email, phone, cast(birth_date as varchar) as birth_date from customers"
    )
    names = [n for n in people["full_name"].to_list() if n]
    return sorted(set(names) | set(people["email"]) | set(people["phone"]) | set(people["birth_date"]))


def _texts_of_object(key: str, body: bytes) -> list[str]:
    texts = [body.decode("latin-1")]
    if key.endswith(".parquet"):  # compressed pages hide raw bytes: scan the decoded values too
        frame = pl.read_parquet(io.BytesIO(body))
        texts.append(frame.cast(pl.String).write_csv())
    return texts


def test_no_pii_in_the_bucket_the_feast_registry_redis_or_the_models(hybrid):
    """The residency promise: no customer's name, email, phone or birth date outside the warehouse."""
    pii = _pii(hybrid)
    assert len(pii) > 3 * 2000
    haystacks: dict[str, str] = {}
    for obj in hybrid.s3.list_objects_v2(Bucket=hybrid.bucket)["Contents"]:
        body = hybrid.s3.get_object(Bucket=hybrid.bucket, Key=obj["Key"])["Body"].read()
        for n, text in enumerate(_texts_of_object(obj["Key"], body)):
            haystacks[f"s3://{hybrid.bucket}/{obj['Key']}#{n}"] = text
    haystacks["feast registry"] = (hybrid.home / "feast" / "registry.db").read_bytes().decode("latin-1")
    r = _redis(hybrid.env["HYBRID_REDIS_URL"])
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
    # full names come from a small list of first and last names: search them whole, with their separator
    for where, text in haystacks.items():
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


def _redis_conf() -> Path:
    return SERVICES_HOME / "services" / "redis" / "redis.conf"


def test_endpoint_answers_503_while_redis_is_down_and_recovers_by_itself(hybrid):
    customer = int(hybrid.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)["customer_id"][0])
    r = _redis(hybrid.env["HYBRID_REDIS_URL"])
    with running_server(hybrid.home, env=hybrid.env) as base:
        assert httpx.post(f"{base}/predict", json={"customer_id": customer}).status_code == 200
        r.shutdown(save=True)  # Redis goes away (its append-only file keeps the data)
        try:
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
        finally:
            subprocess.run(["redis-server", str(_redis_conf())], check=True)
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
    before = hybrid.s3.head_object(Bucket=hybrid.bucket, Key=catalog.ACTIVITY_EXPORT_KEY)["ETag"]
    hybrid.generator().append(days=1)  # new data, so the rerun really writes a new export
    hybrid.s3_proxy.stop()
    try:
        outcome = hybrid.run("onprem")
    finally:
        hybrid.s3_proxy.start()
    assert not outcome.success
    failures = " ".join(outcome.step_failures)
    assert hybrid.env["HYBRID_S3_ENDPOINT"] in failures, failures
    assert hybrid.s3.head_object(Bucket=hybrid.bucket, Key=catalog.ACTIVITY_EXPORT_KEY)["ETag"] == before
    again = hybrid.run("onprem")
    assert again.success, again.step_failures
    assert hybrid.s3.head_object(Bucket=hybrid.bucket, Key=catalog.ACTIVITY_EXPORT_KEY)["ETag"] != before
    assert hybrid.run("cloud").success  # Feast reads the new export through the same endpoint


def test_postgres_outage_fails_naming_the_warehouse_and_a_rerun_completes(hybrid):
    from hybrid_assets import services

    paths = services.Paths(SERVICES_HOME / "services")
    services._pg_down(paths)
    try:
        outcome = hybrid.run("onprem")
    finally:
        services._pg_up(paths, services._load_secrets(paths)["PG_PASSWORD"])
    assert not outcome.success
    port = urlparse(hybrid.env["HYBRID_ONPREM_DSN"]).port
    assert f"PostgreSQL warehouse at 127.0.0.1:{port}" in " ".join(outcome.step_failures)
    assert all(s not in " ".join(outcome.step_failures) for s in _secrets(hybrid))
    assert hybrid.run("onprem").success


def test_redis_outage_fails_the_online_load_naming_redis_and_a_rerun_completes(hybrid):
    r = _redis(hybrid.env["HYBRID_REDIS_URL"])
    production = hybrid.registry().production()
    r.shutdown(save=True)
    try:
        outcome = hybrid.run("cloud")
    finally:
        subprocess.run(["redis-server", str(_redis_conf())], check=True)
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
    from hybrid_assets.platform import dagster_instance

    saved = os.environ.get("DAGSTER_HOME")
    try:
        with hybrid_env(hybrid.home, **hybrid.env):
            instance = dagster_instance(hybrid.settings)
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            from hybrid_assets.platform import run_location

            outcome = run_location("onprem", instance)
        assert outcome.success
        runs = instance.get_runs(limit=1)
        assert runs and runs[0].job_name == "onprem_refresh"
        assert (
            hybrid.env["HYBRID_DAGSTER_PG_URL"] not in (hybrid.home / "dagster" / "dagster.yaml").read_text()
        )
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved
