"""The local services of `make services` (PostgreSQL, Redis, the S3 API), as the hybrid tests reach them: their
addresses and secrets from services.env, and throwaway databases. Without services.env a hybrid test skips,
except under CI=true, where it fails: CI starts the services."""

from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

from core.settings import REPO_ROOT, read_env_file

SERVICES_HOME = REPO_ROOT / ".hybrid"


def services_env_path() -> Path:
    path = Path(os.environ.get("HYBRID_SERVICES_ENV", SERVICES_HOME / "services.env"))
    if not path.exists():
        message = f"{path} not found: run `make services` first"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def services() -> dict[str, str]:
    return read_env_file(services_env_path())


def with_db(url: str, db: str) -> str:
    """The same server, another database (PostgreSQL) or db number (Redis)."""
    return urlunparse(urlparse(url)._replace(path=f"/{db}"))


def drop_database(dsn: str, database: str, attempts: int = 20) -> None:
    """Best-effort cleanup. Right after PostgreSQL restarts (the outage test), an autovacuum worker, which our
    role may not terminate, can hold the database for a moment: try again, then leave it (a leftover test
    database costs disk, not correctness)."""
    import warnings

    import psycopg

    for attempt in range(attempts):
        try:
            with psycopg.connect(dsn, autocommit=True) as con:
                con.execute(f"drop database if exists {database} with (force)")
            return
        except psycopg.Error as exc:
            if attempt == attempts - 1:
                warnings.warn(f"test database {database} left behind: {exc}", stacklevel=2)
            time.sleep(0.5)


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=3)


@contextmanager
def private_database(prefix: str):
    """A PostgreSQL database of its own on the services' server (its name: `with_db` makes its DSN from any URL
    of that server), dropped afterwards."""
    import psycopg

    admin = services()["HYBRID_ONPREM_DSN"]
    database = f"{prefix}{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f"create database {database}")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL from services.env is not reachable ({exc}); run `make services`")
    try:
        yield database
    finally:
        drop_database(admin, database)
