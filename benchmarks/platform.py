"""A hybrid platform of its own for the benchmarks that need one (serving): its own HYBRID_HOME
(``$HYBRID_HOME/bench/platform``), PostgreSQL databases, bucket and Redis database on the services of
`make services`, so that benchmarking never touches the data you work with. Built once with `hybrid demo`,
reused afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

BENCH_DB, BENCH_DAGSTER_DB, BENCH_BUCKET, BENCH_REDIS_DB = (
    "bench_onprem",
    "bench_dagster",
    "hybrid-bench",
    "2",
)


def with_db(url: str, db: str) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{db}"))


def bench_env(customers: int = 20_000) -> dict[str, str]:
    """The environment of the benchmark platform (services from $HYBRID_HOME/services.env)."""
    from core.settings import load_settings, read_env_file

    home = load_settings(apply_env_file=False).home
    services = home / "services.env"
    if not services.exists():
        raise SystemExit(
            f"{services} not found: the benchmarks run on the hybrid services; `make services` first"
        )
    svc = read_env_file(services)
    return {
        **svc,
        "HYBRID_PROFILE": "hybrid",
        "HYBRID_HOME": str(home / "bench" / "platform"),
        "HYBRID_ONPREM_DSN": with_db(svc["HYBRID_ONPREM_DSN"], BENCH_DB),
        "HYBRID_DAGSTER_PG_URL": with_db(svc["HYBRID_DAGSTER_PG_URL"], BENCH_DAGSTER_DB),
        "HYBRID_S3_BUCKET": BENCH_BUCKET,
        "HYBRID_REDIS_URL": with_db(svc["HYBRID_REDIS_URL"], BENCH_REDIS_DB),
        "HYBRID_BENCH_CUSTOMERS": str(customers),
    }


def _create_stores(env: dict[str, str]) -> None:
    import boto3
    import psycopg

    admin = with_db(env["HYBRID_ONPREM_DSN"], "postgres")
    with psycopg.connect(admin, autocommit=True) as con:
        existing = {r[0] for r in con.execute("select datname from pg_database")}
        for db in (BENCH_DB, BENCH_DAGSTER_DB):
            if db not in existing:
                con.execute(f"create database {db}")
    s3 = boto3.client(
        "s3",
        endpoint_url=env["HYBRID_S3_ENDPOINT"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    if BENCH_BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BENCH_BUCKET)


def registry(env: dict[str, str]):
    """The benchmark platform's model registry (the process environment must hold ``env``: use_env)."""
    from core.settings import load_settings
    from resources.model_registry import ModelRegistry
    from resources.object_store import ObjectStore

    settings = load_settings(env={**os.environ, **env})
    return ModelRegistry(ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint))


def use_env(env: dict[str, str]) -> None:
    """Make the benchmark platform this process's platform (credentials are read lazily by the S3 clients)."""
    os.environ.update(env)


def ensure_platform(env: dict[str, str]) -> Path:
    """Build the benchmark platform with `hybrid demo` unless it already serves a model and has features."""
    _create_stores(env)
    home = Path(env["HYBRID_HOME"])
    if registry(env).production() is not None and _online_rows(env) > 0:
        return home
    print(
        f"building the benchmark platform in {home} (hybrid demo, {env['HYBRID_BENCH_CUSTOMERS']} customers)"
    )
    subprocess.run(
        [sys.executable, "-m", "hybrid_cli.cli", "demo", "--customers", env["HYBRID_BENCH_CUSTOMERS"]],
        env={**os.environ, **env},
        check=True,
    )
    return home


def _online_rows(env: dict[str, str]) -> int:
    import redis

    try:
        return redis.Redis.from_url(env["HYBRID_REDIS_URL"], socket_timeout=3).dbsize()
    except redis.RedisError:
        return 0
