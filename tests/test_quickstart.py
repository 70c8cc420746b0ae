"""The README's quick start and profile commands, in the README's order, in a fresh clone:

    make demo                          (embedded: generates, runs both locations, predicts)
    HYBRID_PROFILE=hybrid make demo    (the same home, against PostgreSQL, the S3 API and Redis)
    make demo                          (embedded again: switching back reuses its data)

The clone reuses the environment this test runs in (its `.venv` is a link to it, and `make -o` keeps the
Makefile from syncing it) and imports its own code (PYTHONPATH). The hybrid run gets a private PostgreSQL
database for the warehouse and one for Dagster, a private bucket and Redis database, like tests/test_hybrid.py.

The clone is of the repository's HEAD: commit first. HYBRID_QUICKSTART_SOURCE=worktree copies the working
tree instead (tracked and untracked, not ignored, files) to try uncommitted changes.
"""

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from tests.services import private_database, redis_client, services, with_db

pytestmark = pytest.mark.hybrid

# Small data, so the three demos stay short (about 3 minutes in all). The generator is deterministic, so the
# model is the same every time: holdout AUC 0.91, far above the 0.70 floor. Days are the tighter limit: 60 days
# of feature warm-up, a 30-day label horizon and two held-out weekly snapshots leave two training snapshots
# at 140 days; below 133 there is none and the model step fails (NotEnoughHistory).
CUSTOMERS, DAYS = 1000, 140
DEMO_ARGS = f"--customers {CUSTOMERS} --days {DAYS}"
GENERATING = f"generating {CUSTOMERS} customers over {DAYS} days"
REDIS_DB = 5
VENV = Path(sys.prefix)
STAMP = VENV / ".synced"


def _source_tree(dest: Path) -> None:
    if os.environ.get("HYBRID_QUICKSTART_SOURCE") == "worktree":
        files = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        for name in filter(None, (f.decode() for f in files)):
            source = REPO_ROOT / name
            if source.is_file():  # deleted but still tracked: skipped
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / name)
    else:
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(dest)], check=True)


@pytest.fixture
def clone(tmp_path):
    if not (VENV / "bin" / "hybrid").exists():
        message = f"not running inside the project's environment ({VENV})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    dest = tmp_path / "repo"
    dest.mkdir()
    _source_tree(dest)
    (dest / ".venv").symlink_to(VENV, target_is_directory=True)
    return dest


@pytest.fixture
def private_services():
    """The running services' settings, with a private warehouse database, Dagster database, bucket and Redis
    database; dropped afterwards."""
    import boto3

    svc = services()
    bucket = f"quickstart-{uuid.uuid4().hex[:8]}"
    with private_database("onprem_q") as onprem, private_database("dagster_q") as dagster_db:
        boto3.client(
            "s3",
            endpoint_url=svc["HYBRID_S3_ENDPOINT"],
            region_name="us-east-1",
            aws_access_key_id=svc["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=svc["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=bucket)
        redis_url = with_db(svc["HYBRID_REDIS_URL"], str(REDIS_DB))
        redis_client(redis_url).flushdb()
        yield {
            **svc,
            "HYBRID_ONPREM_DSN": with_db(svc["HYBRID_ONPREM_DSN"], onprem),
            "HYBRID_DAGSTER_PG_URL": with_db(svc["HYBRID_DAGSTER_PG_URL"], dagster_db),
            "HYBRID_S3_BUCKET": bucket,
            "HYBRID_REDIS_URL": redis_url,
        }
        redis_client(redis_url).flushdb()


def _make_demo(repo: Path, home: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYBRID_", "DAGSTER_", "AWS_"))}
    env.update(PYTHONPATH=str(repo), HYBRID_HOME=str(home), **extra)
    # -o: the environment is the one this test runs in; the clone must not sync (reinstall) into it
    result = subprocess.run(
        ["make", "-o", ".venv/.synced", "demo", f"DEMO_ARGS={DEMO_ARGS}"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert "uv sync" not in result.stdout + result.stderr
    for line in result.stdout.splitlines():  # shown with -s, and on a failure
        if line.startswith(("profile ", "  run time", "  production model")):
            print(line)
    return result


def _installed() -> dict[str, int]:
    """Each installed distribution's metadata folder and its modification time: a sync that reinstalls a
    package replaces its folder. (Not site-packages' own time: other tests, running meanwhile, may compile a
    top-level module there for the first time.)"""
    site_packages = sorted(VENV.glob("lib/python*/site-packages"))[0]
    return {p.name: p.stat().st_mtime_ns for p in site_packages.glob("*.dist-info")}


def _assert_summary(result: subprocess.CompletedProcess, profile: str) -> None:
    out = result.stdout
    assert f"profile {profile}, HYBRID_HOME" in out
    for part in ("== onprem location: succeeded", "== cloud location: succeeded", "== summary"):
        assert part in out, out[-3000:]
    assert "run time         " in out and "onprem " in out and "cloud " in out
    assert "production model v" in out and "0 failed" in out
    prediction = [line for line in out.splitlines() if "/predict" in line]
    assert prediction and "-> 200: churn_probability" in prediction[0], out[-3000:]
    assert " - DEBUG - " not in result.stdout + result.stderr, "Dagster's event log only with --verbose"


def test_readme_quick_start_then_hybrid_then_back(clone, private_services, tmp_path):
    home = tmp_path / "home"
    stamp = STAMP.stat().st_mtime_ns if STAMP.exists() else None
    installed = _installed()

    first = _make_demo(clone, home)
    _assert_summary(first, "embedded")
    assert GENERATING in first.stdout

    hybrid = _make_demo(clone, home, HYBRID_PROFILE="hybrid", **private_services)
    _assert_summary(hybrid, "hybrid")
    assert GENERATING in hybrid.stdout, "the hybrid warehouse was empty"
    assert sorted(p.name for p in (home / "generator").iterdir()) == ["embedded", "hybrid"]

    back = _make_demo(clone, home)
    _assert_summary(back, "embedded")
    assert "generating" not in back.stdout, "switching back reuses the embedded data"

    assert (home / "feast" / "feature_store.yaml").exists()  # the Feast repo lives in the home
    assert not (clone / "feature_repo" / "feature_store.yaml").exists(), (
        "nothing is written into the source tree"
    )
    assert (STAMP.stat().st_mtime_ns if STAMP.exists() else None) == stamp, "the environment was synced"
    assert _installed() == installed, "packages were reinstalled"
