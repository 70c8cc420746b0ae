"""Shared fixtures: one fully materialized platform per session (real Dagster runs, real GX, real Feast,
real LightGBM) on a temporary HYBRID_HOME, plus helpers to run more homes side by side."""

import os
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
import httpx
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

TEST_CUSTOMERS = 6000
TEST_DAYS = 180
# A shorter churn label definition (the settings' defaults are 30, 14 and 7) and the shortest history that
# still trains and gates a model with it (60 days of feature warm-up, two held-out snapshots, a horizon before
# them). For the platforms of the tests that are about something else than the label definition
# (tests/test_labels.py covers it) or the model's quality: fewer days, fewer partitions and daily objects.
SHORT_LABELS = {
    "HYBRID_LABEL_HORIZON_DAYS": "10",
    "HYBRID_ACTIVE_DAYS": "5",
    "HYBRID_SNAPSHOT_EVERY_DAYS": "3",
}
SHORT_DAYS = 100


@contextmanager
def hybrid_env(home: Path, **extra: str):
    """Point the platform at ``home`` (and extra settings) for the duration of the block."""
    values = {"HYBRID_HOME": str(home), "HYBRID_PROFILE": "embedded", **extra}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Platform:
    home: Path
    settings: object
    instance: dg.DagsterInstance
    onprem: object = None
    cloud: object = None
    env: dict = field(default_factory=dict)

    def generator(self):
        from hybrid_cli.generator import Generator

        return Generator(self.home, self.warehouse(), self.object_store())

    def warehouse(self):
        from resources.warehouse import warehouse_for

        return warehouse_for(self.settings)

    def object_store(self):
        from resources.object_store import ObjectStore

        return ObjectStore(self.settings.object_store_root, endpoint=self.settings.s3_endpoint)

    def registry(self):
        from resources.model_registry import ModelRegistry

        return ModelRegistry(self.object_store())

    def run(self, location: str, days: tuple | None = None, instance=None, **extra_env: str):
        """Run a location's refresh job (on ``instance``, by default the platform's); the on-prem one for the
        partition days ``(first, last)``, by default every arrival day."""
        from hybrid_cli.platform import run_location

        with hybrid_env(self.home, **{**self.env, **extra_env}):
            return run_location(location, instance or self.instance, days=days)

    def arrival_days(self) -> tuple:
        """The first and last arrival day of the source transactions: the partitions a full on-prem run
        covers."""
        from hybrid_cli.platform import onprem_days

        with hybrid_env(self.home, **self.env):
            return onprem_days(self.settings)


def build_platform(
    home: Path,
    customers: int,
    days: int,
    run: bool = True,
    env: dict | None = None,
    start: date | None = None,
) -> Platform:
    """Generate ``customers`` over ``days`` (from the generator's first day, or ``start``) into ``home`` and,
    with ``run``, run both locations."""
    from core.settings import load_settings

    env = dict(env or {})
    with hybrid_env(home, **env):
        settings = load_settings()
    platform = Platform(home, settings, dg.DagsterInstance.ephemeral(), env=env)
    with hybrid_env(home, **env):
        platform.generator().create(n_customers=customers, days=days, **({"start": start} if start else {}))
    if run:
        platform.onprem = platform.run("onprem")
        assert platform.onprem.success, platform.onprem.step_failures + [
            c.description for c in platform.onprem.blocking_failures
        ]
        platform.cloud = platform.run("cloud")
        assert platform.cloud.success, platform.cloud.step_failures + [
            c.description for c in platform.cloud.blocking_failures
        ]
    return platform


@contextmanager
def persistent_instance(platform: Platform):
    """The home's own Dagster instance (SQLite under HYBRID_HOME/dagster, or PostgreSQL in the hybrid
    profile), as `hybrid demo` and the UI use it, with its compute logs; DAGSTER_HOME is restored after."""
    from hybrid_cli.platform import dagster_instance

    saved = os.environ.get("DAGSTER_HOME")
    try:
        with hybrid_env(platform.home, **platform.env):
            instance = dagster_instance(platform.settings)
        with instance:
            yield instance
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> Platform:
    return build_platform(tmp_path_factory.mktemp("platform"), TEST_CUSTOMERS, TEST_DAYS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(home: Path, poll_seconds: float = 0.5, env: dict | None = None):
    """`hybrid serve` in a subprocess on a free loopback port; yields its base URL once /ready answers."""
    port = free_port()
    env = {
        **os.environ,
        "HYBRID_HOME": str(home),
        "HYBRID_PROFILE": "embedded",
        "HYBRID_MODEL_POLL_SECONDS": str(poll_seconds),
        **(env or {}),
    }
    log = home / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hybrid_cli.cli",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready: {log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- running the suite on several workers (`make test`: pytest -n 4 --dist loadscope) ------------------------------
# One scope per test module, so its module fixtures (a platform of its own) are built once, except for the
# modules that use the session's `platform` fixture: they are one scope, on one worker, so that platform (the
# largest, run through both locations) is built once per suite, not once per worker.
SHARED_PLATFORM = "modules using the session platform"
PLATFORM_MODULES = frozenset(
    {
        "tests/test_asof_store.py",
        "tests/test_automation.py",
        "tests/test_model_quality.py",
        "tests/test_pipeline.py",
        "tests/test_point_in_time.py",
        "tests/test_report.py",
        "tests/test_retraining.py",
        "tests/test_serving.py",
        "tests/test_status.py",
    }
)
# The four longest scopes start first, one per worker. A worker queues its next scope while its last tests
# run, so the next four are tiny (nothing waits behind the long ones), then the long ones, longest first.
FIRST = (
    SHARED_PLATFORM,
    "tests/test_hybrid.py",
    "tests/test_browser.py",
    "tests/test_daemon.py",
    "tests/test_layers.py",
    "tests/test_catalog.py",
    "tests/test_redaction.py",
    "tests/test_scheduling.py",
    "tests/test_quickstart.py",
    "tests/test_own_data.py",
    "tests/test_cluster.py",
    "tests/test_endpoint_hardening.py",
    "tests/test_partitions.py",
    "tests/test_residency.py",
    "tests/test_gates.py",
)


def _rank(scope: str) -> int:
    return FIRST.index(scope) if scope in FIRST else len(FIRST)


def _scope(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return SHARED_PLATFORM if module in PLATFORM_MODULES else module


def pytest_collection_modifyitems(config, items) -> None:
    """A module that uses the session platform but is not in PLATFORM_MODULES would build it on a second
    worker: say so at collection, before anything runs."""
    strays = sorted(
        {i.nodeid.split("::", 1)[0] for i in items if "platform" in getattr(i, "fixturenames", ())}
        - PLATFORM_MODULES
    )
    if strays:
        raise pytest.UsageError(f"add {', '.join(strays)} to PLATFORM_MODULES in tests/conftest.py")


def pytest_xdist_make_scheduler(config, log):
    """The scopes above, in our order. The modules that use the servers of `make services` run side by side:
    each has its own databases, bucket and Redis database, and the outage tests stop a proxy of their own,
    never a shared server."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirst(LoadScopeScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

        def _assign_work_unit(self, node) -> None:
            # The work queue is complete before the first unit goes out: put its scopes in our order then. (Only
            # the queue: a node's collection must keep the worker's order, its indices name the tests to run.)
            if not self.ordered:
                self.workqueue = OrderedDict(
                    sorted(self.workqueue.items(), key=lambda unit: _rank(unit[0]))
                )  # stable: the others in collection order
                self.ordered = True
            super()._assign_work_unit(node)

    config.option.loadscopereorder = False  # our order, not the number of tests per module
    return LongestFirst(config, log)
