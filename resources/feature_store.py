"""The Feast feature store: the platform's as-of offline store (resources/asof_offline_store.py, over Parquet in
a local folder or S3) with a SQLite online store (embedded) or Redis (hybrid).

The definitions live in ``feature_repo/`` (:func:`feature_repo.repo.build`); the Feast repo of a profile is the
folder ``$HYBRID_HOME/feast``, generated here: ``feature_store.yaml`` and ``churn_repo.py``, a definitions file
that calls ``build`` with the profile's object store written in. ``feast -c $HYBRID_HOME/feast plan|apply|ui``
and the platform (:func:`open_feature_store`) use the same folder, registry and project. Nothing is written
into the source tree, and neither file holds a secret (Redis: ``${HYBRID_FEAST_REDIS}``)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

FEAST_PROJECT = "churn"
# registry.db is replaced whole, never written in place (Feast's own file store empties it first)
REGISTRY_STORE = "resources.feast_registry.AtomicFileRegistryStore"
REDIS_ENV = "HYBRID_FEAST_REDIS"  # Feast's host:port,password=... form of HYBRID_REDIS_URL
REPO_FILE = "churn_repo.py"  # the generated definitions file next to feature_store.yaml (a module name no
# installed package uses: Feast imports it as a top-level module, and appends the folder to sys.path last)
GENERATED = "# Generated for the {profile} profile by resources/feature_store.py; do not edit, do not commit."


def feast_dir(home: str | Path) -> Path:
    """The profile's Feast repo: feature_store.yaml, the definitions file, the registry, the SQLite store."""
    return Path(home) / "feast"


def feature_store_yaml(home: str | Path, profile: str, redis_url: str | None = None) -> str:
    home = Path(home)
    registry = feast_dir(home) / "registry.db"
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
    return f"""{GENERATED.format(profile=profile)}
project: {FEAST_PROJECT}
provider: local
registry:
  registry_type: file
  registry_store_type: {REGISTRY_STORE}
  path: {registry}
  cache_ttl_seconds: 60
offline_store:
  type: resources.asof_offline_store.AsOfOfflineStore
{online}entity_key_serialization_version: 3
"""


def feast_repo_py(profile: str, object_store_root: str, s3_endpoint: str | None = None) -> str:
    """The definitions file the Feast CLI imports: feature_repo's objects for this profile's object store (the
    values are written in, so importing it reads no setting and no environment)."""
    from feature_repo.repo import build

    if not object_store_root.startswith("s3://"):  # Feast imports the file from its own folder
        object_store_root = str(Path(object_store_root).resolve())
    names = list(build(object_store_root, s3_endpoint))
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise ValueError(f"Feast object names must be Python identifiers here: {bad}")
    assignments = "".join(f"{name} = _objects[{name!r}]\n" for name in names)
    return f"""{GENERATED.format(profile=profile)}
# The Feast CLI imports this file: feast -c <this folder> plan | apply | ui (see `hybrid feast-config`).
from feature_repo.repo import build

OBJECT_STORE_ROOT = {object_store_root!r}
S3_ENDPOINT = {s3_endpoint!r}

_objects = build(OBJECT_STORE_ROOT, S3_ENDPOINT)
{assignments}"""


def redis_connection_string(url: str) -> str:
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


def _write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` atomically, and only when it differs (readers compare the yaml's inode and mtime)."""
    from resources.feast_registry import write_atomically

    if not path.exists() or path.read_text() != text:
        write_atomically(path, text.encode())
    return path


def write_feature_store_yaml(home: str | Path, profile: str, redis_url: str | None = None) -> Path:
    return _write_if_changed(
        feast_dir(home) / "feature_store.yaml", feature_store_yaml(home, profile, redis_url)
    )


def write_feast_repo(
    home: str | Path,
    profile: str,
    object_store_root: str,
    s3_endpoint: str | None = None,
    redis_url: str | None = None,
) -> Path:
    """Make ``$HYBRID_HOME/feast`` the profile's Feast repo (feature_store.yaml and the definitions file) and
    return it: ``feast -c <it> plan|apply|ui`` works from a shell."""
    write_feature_store_yaml(home, profile, redis_url)
    _write_if_changed(feast_dir(home) / REPO_FILE, feast_repo_py(profile, object_store_root, s3_endpoint))
    return feast_dir(home)


def open_feature_store(
    home: str | Path,
    profile: str,
    redis_url: str | None = None,
    object_store_root: str | None = None,
    s3_endpoint: str | None = None,
):
    """The profile's FeatureStore over ``$HYBRID_HOME/feast``; with ``object_store_root``, the definitions file
    for the Feast CLI is (re)written too."""
    import os

    from feast import FeatureStore

    if profile == "hybrid":
        os.environ[REDIS_ENV] = redis_connection_string(redis_url or os.environ.get("HYBRID_REDIS_URL", ""))
    if object_store_root:
        write_feast_repo(home, profile, object_store_root, s3_endpoint, redis_url)
    else:
        write_feature_store_yaml(home, profile, redis_url)
    folder = feast_dir(home)
    return FeatureStore(repo_path=str(folder), fs_yaml_file=folder / "feature_store.yaml")


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
    return feast_dir(home) / "online_store.db"


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
        store = open_feature_store(
            self.home, self.profile, self.redis_url, self.object_store_root or None, self.s3_endpoint
        )
        if healed:  # the same objects again: Feast creates the online store's tables in the new file
            store.apply(list(self.repo_objects().values()))
            dg.get_dagster_logger().warning(healed)
        return store

    def describe_online(self) -> str:
        return describe_online_store(self.home, self.profile, self.redis_url)

    def repo_objects(self) -> dict:
        """The Feast objects of feature_repo/, pointed at this profile's object store (the same objects the
        generated $HYBRID_HOME/feast/churn_repo.py gives the Feast CLI)."""
        from feature_repo.repo import build

        return build(self.object_store_root, self.s3_endpoint)
