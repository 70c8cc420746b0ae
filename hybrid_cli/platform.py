"""Run the platform's graph through Dagster on the instance under HYBRID_HOME, and summarise the outcome.

Used by `hybrid demo` and by the tests; the Dagster UI (`make ui`) sees the same runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import dagster as dg

from core.settings import Settings

DAGSTER_YAML = {
    "embedded": """# Embedded profile: a local Dagster instance (SQLite storage) under HYBRID_HOME.
telemetry:
  enabled: false
freshness:
  enabled: true
""",
    "hybrid": """# Hybrid profile: Dagster's runs, events and schedules in PostgreSQL (the URL, with its password, is
# read from the environment: HYBRID_DAGSTER_PG_URL, written by `make services` to services.env).
storage:
  postgres:
    postgres_url:
      env: HYBRID_DAGSTER_PG_URL
telemetry:
  enabled: false
freshness:
  enabled: true
""",
}
# Step logs (stdout/stderr of each step) stay on the disk of the host that ran the step: on-prem steps' logs on
# the on-prem host, never in the cloud bucket (docs/decisions.md, "Residency through the orchestrator").
COMPUTE_LOGS_YAML = """compute_logs:
  module: dagster._core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config:
    base_dir: {base_dir}
"""


def prepare_dagster_home(settings: Settings) -> str:
    """Create the instance folder under HYBRID_HOME and point DAGSTER_HOME at it."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    text = DAGSTER_YAML[settings.profile] + COMPUTE_LOGS_YAML.format(base_dir=home / "compute_logs")
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)


def dagster_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent Dagster instance of this HYBRID_HOME (created on first use), for use in this process.

    With PostgreSQL storage (the hybrid profile) it holds its connections in a small pool, as Dagster's
    webserver does: Dagster's storage otherwise opens and authenticates a new connection for most events it
    writes or reads (no pool, so that it is safe in any process), 3,400 for the on-prem run of the demo.
    No statement timeout, as without the pool. SQLite storage is left as it is."""
    prepare_dagster_home(settings)
    instance = dg.DagsterInstance.get()
    instance.optimize_for_webserver(
        statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=POOL_OVERFLOW
    )
    return instance


# the pool of dagster_instance(): one connection held, a few more while threads need them, renewed hourly
POOL_RECYCLE_S = 3600
POOL_OVERFLOW = 4


@dataclass
class CheckOutcome:
    asset: str
    check: str
    passed: bool
    severity: str
    description: str

    @property
    def status(self) -> str:
        return "PASS" if self.passed else ("WARN" if self.severity == "WARN" else "FAIL")


@dataclass
class RunOutcome:
    location: str
    success: bool
    checks: list[CheckOutcome] = field(default_factory=list)
    materialized: dict[str, dict] = field(default_factory=dict)
    step_failures: list[str] = field(default_factory=list)

    @property
    def blocking_failures(self) -> list[CheckOutcome]:
        return [c for c in self.checks if c.status == "FAIL"]


def onprem_days(settings: Settings) -> tuple:
    """The daily partitions the on-prem run covers: every arrival day of the source transactions."""
    from core.sources import load
    from hybrid_assets.onprem.arrivals import arrival_days
    from resources.warehouse import warehouse_for

    sources = load(settings.sources_file)
    days = arrival_days(warehouse_for(settings), sources)
    if days is None:
        raise RuntimeError(
            "no transactions with an arrival day in the warehouse from the first partition day "
            f"{sources.first_day} on: run `hybrid generate` first, or, for older history, set `first_day` "
            f"in the source mapping ({settings.sources_file}; `hybrid sources check` says which day)"
        )
    return days


def run_location(
    location: str,
    instance: dg.DagsterInstance,
    days: tuple | None = None,
    settings: Settings | None = None,
    log_level: str | None = None,
) -> RunOutcome:
    """Execute the location's refresh job (all its assets and checks) and collect what happened. The on-prem
    job runs the partition days ``days`` (first, last) in one run; by default every arrival day.
    ``log_level``: the level of Dagster's console logger for this run (by default DEBUG: every event); the
    event log in the instance is complete whatever it is."""
    from core.days import range_tags
    from core.settings import load_settings

    tags = {"launched_by": "hybrid demo"}
    if location == "onprem":
        from hybrid_assets.onprem.definitions import defs
        from resources.warehouse import WarehouseError

        try:
            tags.update(range_tags(*(days or onprem_days(settings or load_settings()))))
        except WarehouseError as exc:  # the warehouse is down: a failed run that says so, as a step would
            return RunOutcome(location=location, success=False, step_failures=[f"partition days: {exc}"])
    else:
        from hybrid_assets.cloud.definitions import defs
    job = defs().resolve_job_def(f"{location}_refresh")
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}} if log_level else None
    result = job.execute_in_process(instance=instance, raise_on_error=False, tags=tags, run_config=run_config)
    outcome = RunOutcome(location=location, success=result.success)
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            e = event.event_specific_data
            outcome.checks.append(
                CheckOutcome(
                    e.asset_key.to_user_string(),
                    e.check_name,
                    e.passed,
                    e.severity.value,
                    e.description or "",
                )
            )
        elif event.event_type_value == "ASSET_MATERIALIZATION":
            m = event.event_specific_data.materialization
            outcome.materialized[m.asset_key.to_user_string()] = {k: v.value for k, v in m.metadata.items()}
        elif event.event_type_value == "STEP_FAILURE":
            err = event.event_specific_data.error
            message = (err.cause.message if err and err.cause else err.message if err else "").strip()
            text = " ".join(message.split())[:800] if message else "failed"
            outcome.step_failures.append(f"{event.step_key}: {text}")
    return outcome


def onprem_refresh_job():
    """The on-prem job, rebuilt by name in each step's subprocess (see :func:`backfill_onprem`)."""
    from hybrid_assets.onprem.definitions import defs

    return defs().resolve_job_def("onprem_refresh")


def backfill_onprem(first, last, instance: dg.DagsterInstance) -> tuple[bool, str]:
    """Materialize the on-prem partitions ``first``..``last`` as one run with the multiprocess executor, as
    a backfill from the UI does; the run shows in the UI. Returns (success, run id)."""
    from core.days import range_tags

    tags = {"launched_by": "hybrid backfill", **range_tags(first, last)}
    with dg.execute_job(dg.reconstructable(onprem_refresh_job), instance=instance, tags=tags) as result:
        return result.success, result.run_id
