"""The Feast feature store: the platform's as-of offline store (resources/asof_offline_store.py, over Parquet in
a local folder or S3) with a SQLite online store (embedded) or Redis (hybrid). ``feature_store.yaml`` is
generated for the active profile, so one Feast repo (``feature_repo/``) serves both."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

FEAST_PROJECT = "churn"
REDIS_ENV = "HYBRID_FEAST_REDIS"  # Feast's host:port,password=... form of HYBRID_REDIS_URL


def feature_store_yaml(home: str | Path, profile: str, redis_url: str | None = None) -> str:
    home = Path(home)
    registry = home / "feast" / "registry.db"
    if profile == "hybrid":  # the password stays in the environment, never in this file
        online = f"""online_store:
  type: redis
  connection_string: "${{{REDIS_ENV}}}"
"""
    else:
        online = f"""online_store:
  type: sqlite
  path: {online_store_path(home)}
"""
    return f"""# Generated for the {profile} profile by resources/feature_store.py; do not edit, do not commit.
project: {FEAST_PROJECT}
provider: local
registry:
  registry_type: file
  path: {registry}
  cache_ttl_seconds: 60
offline_store:
  type: resources.asof_offline_store.AsOfOfflineStore
{online}entity_key_serialization_version: 3
"""


def _redis_connection_string(url: str) -> str:
    """Feast wants ``host:port,password=...``; people write ``redis://:password@host:port/0``."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if not parsed.scheme:
        return url
    # short timeouts: a Redis outage must turn into a quick 503, not a hung request
    parts = [
        f"{parsed.hostname or 'localhost'}:{parsed.port or 6379}",
        "socket_timeout=2",
        "socket_connect_timeout=1",
    ]
    if (
        parsed.scheme == "rediss"
    ):  # TLS (a managed Redis): Feast's client, the loader and the checks use it too
        parts.append("ssl=true")
    if parsed.username:
        parts.append(f"username={parsed.username}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.path.strip("/"):
        parts.append(f"db={parsed.path.strip('/')}")
    return ",".join(parts)


def redis_address(redis_url: str | None) -> tuple[str, int]:
    from urllib.parse import urlparse

    url = urlparse(redis_url or "")
    return url.hostname or "localhost", url.port or 6379


def describe_online_store(home: str | Path, profile: str, redis_url: str | None = None) -> str:
    """The online store and its address, for error messages (never the password)."""
    if profile == "hybrid":
        host, port = redis_address(redis_url)
        return f"Redis at {host}:{port}"
    return f"SQLite at {online_store_path(home)}"


def write_feature_store_yaml(home: str | Path, profile: str, redis_url: str | None = None) -> Path:
    path = Path(home) / "feast" / "feature_store.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = feature_store_yaml(home, profile, redis_url)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def open_feature_store(home: str | Path, profile: str, redis_url: str | None = None):
    import os

    from feast import FeatureStore

    if profile == "hybrid":
        os.environ[REDIS_ENV] = _redis_connection_string(redis_url or os.environ.get("HYBRID_REDIS_URL", ""))
    from core.settings import FEATURE_REPO

    return FeatureStore(
        repo_path=str(FEATURE_REPO), fs_yaml_file=write_feature_store_yaml(home, profile, redis_url)
    )


def _forget_cached_s3_listings() -> None:
    """Feast reads S3 sources through s3fs, which caches file sizes per process. A step in a long-lived process
    (the demo, tests) would read a rewritten export with the old size and find no Parquet footer."""
    try:
        import s3fs
    except ImportError:
        return
    s3fs.S3FileSystem.clear_instance_cache()


SQLITE_HEADER = b"SQLite format 3\x00"


def online_store_path(home: str | Path) -> Path:
    return Path(home) / "feast" / "online_store.db"


def heal_online_store(home: str | Path) -> str | None:
    """The SQLite online store is derived data: if it is corrupted (not a database any more), move it aside
    and say so; the next load rebuilds it from the offline store. Returns what was done, or None."""
    import sqlite3
    import time

    path = online_store_path(home)
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as f:
        header = f.read(len(SQLITE_HEADER))
    problem = None if header == SQLITE_HEADER else "its header is not SQLite's"
    if problem is None:
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                con.execute("select count(*) from sqlite_master").fetchone()
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
    if problem is None:
        return None
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    path.replace(aside)
    return (
        f"the online store {path} was corrupted ({problem}): moved aside to {aside.name}; this run rebuilds "
        "it from the offline store (the endpoint answers 503 until then)"
    )


class FeatureStoreResource(dg.ConfigurableResource):
    """Opens the Feast feature store of the active profile (nothing is opened until a step asks)."""

    home: str = Field(description="HYBRID_HOME; the registry and the generated feature_store.yaml live here")
    profile: str = "embedded"
    redis_url: str | None = None
    s3_endpoint: str | None = None
    object_store_root: str = ""

    def store(self):
        _forget_cached_s3_listings()
        healed = heal_online_store(self.home) if self.profile != "hybrid" else None
        store = open_feature_store(self.home, self.profile, self.redis_url)
        if healed:  # the same objects again: Feast creates the online store's tables in the new file
            store.apply(list(self.repo_objects().values()))
            dg.get_dagster_logger().warning(healed)
        return store

    def describe_online(self) -> str:
        return describe_online_store(self.home, self.profile, self.redis_url)

    def repo_objects(self) -> dict:
        """The Feast objects of feature_repo/, pointed at this profile's object store."""
        from feature_repo.repo import build

        return build(self.object_store_root, self.s3_endpoint)
