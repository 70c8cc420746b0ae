"""The Feast side of the platform: the Redis connection string it hands Feast (and through Feast, the online
loader and the checks), and the profile's Feast repo, $HYBRID_HOME/feast, which Feast's own CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
from feast.infra.online_stores.redis import RedisOnlineStore

from core import catalog
from core.settings import FEATURE_REPO, REPO_ROOT, read_env_file
from resources.feature_store import REDIS_ENV, REPO_FILE, redis_connection_string
from tests.services import services_env_path


def test_redis_urls_become_feast_connection_strings_tls_and_user_included():
    plain = redis_connection_string("redis://:s3cret@10.0.0.5:6380/2")
    nodes, params = RedisOnlineStore._parse_connection_string(plain)
    assert nodes == [{"host": "10.0.0.5", "port": "6380"}]
    assert params["password"] == "s3cret" and params["db"] == 2 and "ssl" not in params
    assert params["socket_timeout"] == 2 and params["socket_connect_timeout"] == 1
    tls = redis_connection_string("rediss://app:s3cret@cache.example.com:6379/0")
    nodes, params = RedisOnlineStore._parse_connection_string(tls)
    assert nodes == [{"host": "cache.example.com", "port": "6379"}]
    assert params["ssl"] is True and params["username"] == "app" and params["password"] == "s3cret"


# -- the Feast repo of a profile: $HYBRID_HOME/feast, run with Feast's own CLI ----------------------------

FEAST = str(Path(sys.executable).with_name("feast"))
VIEWS = sorted(catalog.VIEW_OFFLINE_KEY)

IMPORT_PROBE = """
import json, os, sys

import feast

ours = tuple(sys.argv[1:])  # the folders of our packages
read = []
_getitem = os._Environ.__getitem__


def spy(self, key):
    frame = sys._getframe(1)  # the code that asked, past os.environ's and Mapping's own methods
    while frame and frame.f_code.co_filename.endswith(("os.py", "os>", "_collections_abc.py", "_abc>")):
        frame = frame.f_back
    if key.startswith("HYBRID_") or (frame and frame.f_code.co_filename.startswith(ours)):
        read.append(key)
    return _getitem(self, key)


os._Environ.__getitem__ = spy
import core.settings

calls = []
core.settings.load_settings = lambda *args, **kwargs: calls.append(1)
import feature_repo.repo as repo

kinds = (feast.Entity, feast.FeatureView, feast.FeatureService)
built = [name for name, value in vars(repo).items() if isinstance(value, kinds)]
print(json.dumps({"env": sorted(set(read)), "load_settings": len(calls), "objects": built}))
"""


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts)


def test_importing_feature_repo_builds_nothing_reads_no_setting_and_writes_nothing(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    source_before = _listing(FEATURE_REPO)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HYBRID_HOME": str(home),
        "HYBRID_PROFILE": "not-a-profile",  # load_settings() would raise on it
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(REPO_ROOT / "core"), str(FEATURE_REPO)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe == {"env": [], "load_settings": 0, "objects": []}
    assert list(home.iterdir()) == [] and list(cwd.iterdir()) == []
    assert _listing(FEATURE_REPO) == source_before


def _feast(folder: Path, command: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [FEAST, "-c", str(folder), command], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"feast {command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_feast_cli_plans_and_applies_the_generated_repo_as_the_platform_does(tmp_path):
    """`feast -c $HYBRID_HOME/feast plan` / `apply` (Feast's real CLI, with no setting of ours in the
    environment) register the platform's objects in the platform's registry; after the platform applies them
    too, Feast sees nothing to change."""
    from feast import FeatureStore

    from resources.feature_store import FeatureStoreResource, write_feast_repo

    home = tmp_path / "home"
    root = str(home / "object_store")
    source_before = _listing(FEATURE_REPO)
    folder = write_feast_repo(home, "embedded", root)  # what `hybrid feast-config` writes
    assert folder == home / "feast"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["feature_store.yaml", REPO_FILE])
    assert (folder / REPO_FILE).read_text().startswith("# Generated for the embedded profile")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(tmp_path))}

    plan = _feast(folder, "plan", env)
    for view in VIEWS:
        assert f"Created feature view {view}" in plan, plan
    assert f"Created feature service {catalog.FEATURE_SERVICE}" in plan, plan
    assert FeatureStore(repo_path=str(folder)).list_feature_views() == [], "plan applied something"

    _feast(folder, "apply", env)
    store = FeatureStore(repo_path=str(folder))
    assert store.project == "churn"
    assert store.config.registry.path == str(folder / "registry.db")
    assert sorted(v.name for v in store.list_feature_views()) == VIEWS
    assert [s.name for s in store.list_feature_services()] == [catalog.FEATURE_SERVICE]
    assert [e.name for e in store.list_entities()] == [catalog.ENTITY]

    # the platform (the feature_registry asset) applies its objects to the same registry: nothing differs
    resource = FeatureStoreResource(home=str(home), profile="embedded", object_store_root=root)
    platform = resource.store()
    platform.apply(list(resource.repo_objects().values()))
    assert sorted(v.name for v in platform.list_feature_views()) == VIEWS
    again = _feast(folder, "plan", env)
    assert "No changes to registry" in again and "No changes to infrastructure" in again, again
    assert _listing(FEATURE_REPO) == source_before, "something wrote into feature_repo/"


def test_the_registry_is_replaced_whole_never_seen_empty_or_left_short(tmp_path, monkeypatch):
    """Every online load records its interval in registry.db. Feast's own file store empties the file and then
    writes it: a reader in between (the endpoint, the Feast CLI, a step) found no feature service, and a writer
    killed in between left the registry empty. The platform's store writes a synced copy and renames it."""
    from feast import FeatureStore

    from resources.feast_registry import AtomicFileRegistryStore
    from resources.feature_store import FeatureStoreResource, feast_dir

    home = tmp_path / "home"
    resource = FeatureStoreResource(
        home=str(home), profile="embedded", object_store_root=str(home / "objects")
    )
    store = resource.store()
    store.apply(list(resource.repo_objects().values()))
    backend = store.registry._registry_store
    assert type(backend) is AtomicFileRegistryStore, "feature_store.yaml does not name the platform's store"
    path = feast_dir(home) / "registry.db"
    before = path.read_bytes()

    def readable(data: bytes) -> list[str]:
        registry = type(store.registry.proto())()
        registry.ParseFromString(data)
        return [s.spec.name for s in registry.feature_services]

    class Watched:
        """The registry to write, which looks at the file as a reader would while it is being serialized."""

        def __init__(self, proto):
            self.proto, self.version_id, self.last_updated, self.seen = proto, "", proto.last_updated, None

        def SerializeToString(self):  # noqa: N802 (protobuf's name)
            self.seen = path.read_bytes()
            return self.proto.SerializeToString()

    watched = Watched(store.registry.proto())
    backend.update_registry_proto(watched)
    assert watched.seen == before, "a reader saw the registry while it was being rewritten"
    assert readable(path.read_bytes()) == [catalog.FEATURE_SERVICE]

    # a writer that dies after writing its bytes and before they are in place: the last registry stays
    before = path.read_bytes()

    def dies(fd):
        raise OSError("the disk went away")

    monkeypatch.setattr(os, "fsync", dies)
    view = store.get_feature_view(sorted(catalog.VIEW_OFFLINE_KEY)[0])
    with pytest.raises(OSError, match="the disk went away"):
        store.registry.apply_materialization(
            view, store.project, datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC)
        )
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith(".")) == [], "a temporary file"
    reopened = FeatureStore(repo_path=str(path.parent))
    assert reopened.get_feature_service(catalog.FEATURE_SERVICE).name == catalog.FEATURE_SERVICE


def test_feast_config_writes_the_profile_folder_and_removes_only_its_old_copy(tmp_path, monkeypatch, capsys):
    from hybrid_cli import cli, commands

    home, source = tmp_path / "home", tmp_path / "feature_repo"
    source.mkdir()
    old = source / "feature_store.yaml"
    old.write_text("# Generated for the embedded profile by resources/feature_store.py; do not edit.\n")
    monkeypatch.setenv("HYBRID_HOME", str(home))
    monkeypatch.setenv("HYBRID_PROFILE", "embedded")
    monkeypatch.setattr(commands, "FEATURE_REPO", source)

    assert cli.main(["feast-config"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (home / "feast").iterdir()) == sorted(["feature_store.yaml", REPO_FILE])
    assert f"feast -c {home / 'feast'} plan" in out
    assert not old.exists(), "the old generated copy in the source tree stays"

    old.write_text("project: mine\n")  # a file someone wrote by hand is not ours to delete
    assert cli.main(["feast-config"]) == 0
    assert old.read_text() == "project: mine\n"

    # hybrid: the cloud host has no on-prem DSN and needs none here; the bucket it does need
    for name in ("HYBRID_ONPREM_DSN", "HYBRID_S3_BUCKET", "HYBRID_S3_ENDPOINT", "HYBRID_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HYBRID_PROFILE", "hybrid")
    assert cli.main(["feast-config"]) == 2
    assert "HYBRID_S3_BUCKET" in capsys.readouterr().err
    monkeypatch.setenv("HYBRID_S3_BUCKET", "churn-bucket")
    assert cli.main(["feast-config"]) == 0
    assert "OBJECT_STORE_ROOT = 's3://churn-bucket'" in (home / "feast" / REPO_FILE).read_text()
    assert "${HYBRID_FEAST_REDIS}" in (home / "feast" / "feature_store.yaml").read_text()
    assert REDIS_ENV in capsys.readouterr().out


def test_services_env_carries_the_feast_redis_string_of_the_same_secret():
    from hybrid_cli.services import REDIS_PORT, services_env

    env = services_env(
        {
            "PG_PASSWORD": "pg",
            "REDIS_PASSWORD": "r3dis",
            "AWS_ACCESS_KEY_ID": "AK",
            "AWS_SECRET_ACCESS_KEY": "sk",
        }
    )
    nodes, params = RedisOnlineStore._parse_connection_string(env[REDIS_ENV])
    assert nodes == [{"host": "127.0.0.1", "port": str(REDIS_PORT)}]
    assert params["password"] == "r3dis" and params["db"] == 0
    assert "r3dis" in env["HYBRID_REDIS_URL"]


# -- the hybrid profile: a shell with services.env's environment is enough --------------------------------


ONLINE_READ = f"""
import json, sys
from feast import FeatureStore

store = FeatureStore(repo_path=sys.argv[1])
service = store.get_feature_service({catalog.FEATURE_SERVICE!r})
rows = store.get_online_features(features=service, entity_rows=[{{{catalog.ENTITY_KEY!r}: -7}}]).to_dict()
print(json.dumps(rows))
"""


@pytest.mark.hybrid
def test_feast_cli_runs_in_the_hybrid_profile_from_a_shell_with_services_env(tmp_path):
    """As the README says: `set -a; . .hybrid/services.env; set +a; feast -c $HYBRID_HOME/feast plan` (and
    apply), and a Feast client reaches Redis with nothing but that environment."""
    path = services_env_path()
    svc = read_env_file(path)
    if REDIS_ENV not in svc:
        pytest.fail(
            f"{path} has no {REDIS_ENV} (written by an older `make services`): run `make services` again"
        )
    home = tmp_path / "home"
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(tmp_path))}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("hybrid")), "feast-config"],
        env={**base, **svc, "HYBRID_HOME": str(home), "HYBRID_PROFILE": "hybrid"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    folder = home / "feast"
    yaml, repo_py = (folder / "feature_store.yaml").read_text(), (folder / REPO_FILE).read_text()
    assert "type: redis" in yaml and "${HYBRID_FEAST_REDIS}" in yaml
    assert f"s3://{svc['HYBRID_S3_BUCKET']}" in repo_py and repr(svc["HYBRID_S3_ENDPOINT"]) in repo_py
    secrets = [urlparse(svc[name]).password for name in ("HYBRID_REDIS_URL", "HYBRID_ONPREM_DSN")]
    for secret in [*secrets, svc["AWS_SECRET_ACCESS_KEY"]]:
        assert secret and secret not in yaml and secret not in repo_py

    def shell(command: str) -> str:
        run = subprocess.run(
            ["bash", "-c", f'set -a; . "{path}"; set +a; {command}'],
            env=base,  # nothing but services.env's environment (and where the executables are)
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"{command} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        return run.stdout

    plan = shell(f'"{FEAST}" -c "{folder}" plan')
    for view in VIEWS:
        assert f"Created feature view {view}" in plan, plan
    shell(f'"{FEAST}" -c "{folder}" apply')
    reader = tmp_path / "read_online.py"
    reader.write_text(ONLINE_READ)
    online = shell(f'"{sys.executable}" "{reader}" "{folder}"')
    values = json.loads(online.strip().splitlines()[-1])
    assert values[catalog.ENTITY_KEY] == [-7]
    assert all(v == [None] for k, v in values.items() if k != catalog.ENTITY_KEY), values
