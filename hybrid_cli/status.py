"""`hybrid status`: what is materialized, the latest check results, the latest run of each job, runs that
look stuck, the production model and the endpoint.

It reads the Dagster instance of the active HYBRID_HOME (the one `hybrid demo` and `make ui` use), the model
registry's production pointer and the endpoint's /health and /ready. It only reads: a home where nothing
has run yet shows every asset as "never materialized" and creates nothing. A part that cannot be read (a
service down, a missing variable) is reported in one line, without a traceback.

Runs: for each job of both code locations (their implicit ``__ASSET_JOB`` included, which runs UI
materializations and the automation sensor's runs), the newest run and the newest finished one. A job
needs attention when its newest finished run is FAILURE or CANCELED; a later SUCCESS of the same job clears
it, a run still in progress does not. A run is stuck when it has been QUEUED, STARTING, STARTED or CANCELING
for longer than ``stuck_after`` (default 6 hours; `--stuck-after`), counted from its start, or from its
creation if it never started: a run whose process was killed (`kill -9`) stays STARTED forever.

Exit code: 0 whatever the platform's state, so the command is safe in scripts and demos. With ``--strict``
it is 1 when something needs attention: an asset never materialized, a check whose latest result failed
with ERROR severity (WARN does not count), a job whose latest finished run failed or was canceled, a stuck
run, no production model, an endpoint that is not ready, or a part that could not be read. An invalid
HYBRID_PROFILE or ``stuck_after`` exits 2. Service variables are not required up front (the cloud host has
no HYBRID_ONPREM_DSN): a part whose variable is missing is reported as unreadable, like a part whose service
is down.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from core.settings import ConfigError, Settings, load_settings

DEFAULT_URL = "http://127.0.0.1:8000"
HTTP_TIMEOUT_S = 2.0
S3_TIMEOUT_S = "5"  # the object store's own default (30 s, 3 attempts) is too patient for a status command
DEFAULT_STUCK_AFTER = "6h"  # far longer than any run of the platform (a full demo run takes minutes)
# a run in one of these statuses for longer than stuck_after is stuck; NOT_STARTED is left out: nothing
# waits on such a record (it was created but never submitted)
STUCK_STATUSES = ("QUEUED", "STARTING", "STARTED", "CANCELING")
FINISHED_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")
FAILED_STATUSES = ("FAILURE", "CANCELED")  # the newest finished run of a job in one of these: attention
SHARED_JOB_SCAN = 200  # runs of a job name defined in both locations (__ASSET_JOB) scanned for each location


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:limit]}"


_DURATION_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float) -> float:
    """Seconds in ``text``: a positive number with an optional unit s, m (or min), h or d, e.g. ``90m``, ``6h``,
    ``1.5d``; a bare number is minutes. A number (not a string) is already seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        unit = next((u for u in sorted(_DURATION_UNITS, key=len, reverse=True) if raw.endswith(u)), "m")
        number = raw[: -len(unit)] if raw.endswith(unit) else raw
        try:
            value = float(number) * _DURATION_UNITS[unit]
        except ValueError:
            value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"stuck-after must be a positive duration such as 90m, 6h or 1d, not {text!r}")
    return value


def location_definitions() -> dict[str, dg.Definitions]:
    """The definitions of both code locations (loading them opens no connection)."""
    from hybrid_assets.cloud.definitions import defs as cloud_defs
    from hybrid_assets.onprem.definitions import defs as onprem_defs

    return {"onprem": onprem_defs(), "cloud": cloud_defs()}


def asset_status(instance: dg.DagsterInstance | None, locations: Mapping[str, dg.Definitions]) -> list[dict]:
    """One row per materializable asset: last materialization (time, run) and, if partitioned, how many of
    its partitions are materialized. ``instance`` None: nothing has run yet."""
    rows = []
    for location, defs in locations.items():
        graph = defs.resolve_asset_graph()
        for key in graph.toposorted_asset_keys:
            node = graph.get(key)
            if not node.is_materializable:  # the other location's asset, seen from here
                continue
            row = {
                "asset": key.to_user_string(),
                "location": location,
                "group": node.group_name,
                "last_materialized": None,
                "run_id": None,
                "partitions": None,
            }
            event = instance.get_latest_materialization_event(key) if instance else None
            if event is not None:
                row["last_materialized"], row["run_id"] = _iso(event.timestamp), event.run_id
            if node.partitions_def is not None:
                done = instance.get_materialized_partitions(key) if instance else set()
                try:
                    keys = set(node.partitions_def.get_partition_keys(dynamic_partitions_store=instance))
                except Exception:  # dynamic partitions and no instance yet: the total is unknown
                    keys = None
                row["partitions"] = {
                    "materialized": len(done & keys if keys is not None else done),
                    "total": None if keys is None else len(keys),
                }
            rows.append(row)
    return rows


def check_status(instance: dg.DagsterInstance | None, locations: Mapping[str, dg.Definitions]) -> list[dict]:
    """One row per asset check: its latest result (PASS, WARN, FAIL or NOT RUN), severity, when and in which
    run; and whether a later run planned it but did not evaluate it (skipped, or still running)."""
    from dagster._core.storage.asset_check_execution_record import (
        COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES as COMPLETED,
    )
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    rows = []
    for location, defs in locations.items():
        graph = defs.resolve_asset_graph()
        keys = sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
        storage = instance.event_log_storage if instance else None
        latest = storage.get_latest_asset_check_execution_by_key(keys) if storage else {}
        for key in keys:
            row = {
                "asset": key.asset_key.to_user_string(),
                "check": key.name,
                "location": location,
                "blocking": bool(graph.get_check_spec(key).blocking),
                "result": "NOT RUN",
                "passed": None,
                "severity": None,
                "evaluated_at": None,
                "run_id": None,
                "description": None,
                "not_evaluated_in_run": None,
            }
            done = (
                storage.get_asset_check_execution_history(key, limit=1, status=COMPLETED) if storage else []
            )
            if done and done[0].event is not None and done[0].event.asset_check_evaluation is not None:
                evaluation = done[0].event.asset_check_evaluation
                severity = evaluation.severity.value
                row.update(
                    result="PASS" if evaluation.passed else ("WARN" if severity == "WARN" else "FAIL"),
                    passed=evaluation.passed,
                    severity=severity,
                    evaluated_at=_iso(done[0].event.timestamp),
                    run_id=done[0].run_id,
                    description=evaluation.description,
                )
            last = latest.get(key)
            if (
                last is not None
                and last.status == AssetCheckExecutionRecordStatus.PLANNED
                and (not done or last.id != done[0].id)
            ):
                run = instance.get_run_by_id(last.run_id)
                row["not_evaluated_in_run"] = {
                    "run_id": last.run_id,
                    "state": "in progress" if run is not None and not run.is_finished else "skipped",
                }
            rows.append(row)
    return rows


def _run_info(instance: dg.DagsterInstance, record) -> dict:
    run = record.dagster_run
    info = {
        "run_id": run.run_id,
        "job": run.job_name,
        "status": run.status.value,
        "created_at": _iso(record.create_timestamp.timestamp()),
        "started_at": _iso(record.start_time),
        "ended_at": _iso(record.end_time),
        "message": None,
    }
    if info["ended_at"] is None and run.status.value in FINISHED_STATUSES:
        # a storage without the run-stats columns (or a copied record) has no end time: its last update is
        info["ended_at"] = _iso(record.update_timestamp.timestamp())
    if run.status.value == "FAILURE":  # Dagster's own summary, e.g. "... Steps failed: ['marketing_events']."
        from dagster._core.events import DagsterEventType

        found = instance.get_records_for_run(
            run.run_id, of_type=DagsterEventType.RUN_FAILURE, limit=1, ascending=False
        ).records
        if found and found[0].event_log_entry.dagster_event is not None:
            info["message"] = " ".join((found[0].event_log_entry.dagster_event.message or "").split())[:300]
    return info


def _newest_run(instance, job: str, location: str, shared: bool, statuses=None):
    """The newest run record of ``job`` in ``location`` (optionally in one of ``statuses``). A job name that
    both locations define (the implicit ``__ASSET_JOB``) is told apart by the run's code location; a run of
    such a name without one (executed in process) belongs to neither."""
    filters = dg.RunsFilter(
        job_name=job, statuses=[dg.DagsterRunStatus(s) for s in statuses] if statuses else None
    )
    if not shared:
        records = instance.get_run_records(filters=filters, limit=1)
        return records[0] if records else None
    for record in instance.get_run_records(filters=filters, limit=SHARED_JOB_SCAN):
        origin = record.dagster_run.remote_job_origin
        if origin is not None and origin.location_name == location:
            return record
    return None


def run_status(
    instance: dg.DagsterInstance | None,
    locations: Mapping[str, dg.Definitions],
    stuck_after_s: float,
    now: float | None = None,
) -> dict:
    """``jobs``: one row per job of each location with its newest run (``latest``) and newest finished run
    (``latest_finished``); ``failed`` when that finished run is FAILURE or CANCELED. ``stuck``: every run,
    of any job, QUEUED/STARTING/STARTED/CANCELING for longer than ``stuck_after_s`` (from its start, or its
    creation if it never started), oldest first. ``instance`` None: nothing has run yet."""
    now = time.time() if now is None else now
    names = [(loc, job.name) for loc, defs in locations.items() for job in defs.resolve_all_job_defs()]
    shared = {name for _, name in names if sum(n == name for _, n in names) > 1}
    jobs = []
    for location, name in names:
        row = {"job": name, "location": location, "latest": None, "latest_finished": None, "failed": False}
        if instance is not None:
            latest = _newest_run(instance, name, location, name in shared)
            if latest is not None:
                row["latest"] = _run_info(instance, latest)
                finished = (
                    latest
                    if latest.dagster_run.status.value in FINISHED_STATUSES
                    else _newest_run(instance, name, location, name in shared, FINISHED_STATUSES)
                )
                if finished is not None:
                    row["latest_finished"] = (
                        row["latest"] if finished is latest else _run_info(instance, finished)
                    )
                    row["failed"] = row["latest_finished"]["status"] in FAILED_STATUSES
        jobs.append(row)
    stuck = []
    if instance is not None:
        active = dg.RunsFilter(statuses=[dg.DagsterRunStatus(s) for s in STUCK_STATUSES])
        for record in instance.get_run_records(filters=active, order_by="create_timestamp", ascending=True):
            since = record.start_time or record.create_timestamp.timestamp()
            if now - since > stuck_after_s:
                origin = record.dagster_run.remote_job_origin
                stuck.append(
                    {
                        **_run_info(instance, record),
                        "location": origin.location_name if origin is not None else None,
                        "since": _iso(since),
                        "for_s": round(now - since),
                    }
                )
    return {"stuck_after_s": stuck_after_s, "jobs": jobs, "stuck": stuck}


def production_model(settings: Settings) -> dict | None:
    """The registry's production pointer (None before the first deployment) and where its model card is."""
    from hybrid_assets.cloud.report import CARD_FILE
    from resources.model_registry import ModelRegistry
    from resources.object_store import ObjectStore

    if settings.profile == "embedded" and not Path(settings.object_store_root).exists():
        return None  # nothing ran yet (and ObjectStore() would create the folder)
    registry = ModelRegistry(ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint))
    pointer = registry.production()
    if pointer is None:
        return None
    metrics = pointer.get("metrics", {})
    return {
        "version": pointer["version"],
        "auc": metrics.get("auc"),
        "recency_baseline_auc": metrics.get("recency_baseline_auc"),
        "promoted_at": pointer.get("promoted_at"),
        "reason": pointer.get("reason"),
        "model_card": registry.artifact_uri(pointer["version"], CARD_FILE)
        if CARD_FILE in registry.artifacts(pointer["version"])
        else None,
    }


def endpoint_health(url: str, timeout: float = HTTP_TIMEOUT_S) -> dict:
    """GET /health and /ready. ``reachable``: the process answered; ``ready``: /ready answered 200."""
    import httpx

    base = url.rstrip("/")
    result: dict = {"url": base, "reachable": False, "ready": False, "responses": {}}
    for path in ("health", "ready"):
        try:
            response = httpx.get(f"{base}/{path}", timeout=timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            result["responses"][path] = {"error": f"unreachable ({type(exc).__name__}: {exc})"}
            if path == "health":  # nothing listens: /ready would only wait again
                result["responses"]["ready"] = {"error": "not asked: /health is unreachable"}
                break
            continue
        try:
            body = response.json()
        except ValueError:
            body = response.text[:200]
        result["responses"][path] = {"status_code": response.status_code, "body": body}
        result["reachable"] = True
        if path == "ready":
            result["ready"] = response.status_code == 200
    return result


def _check_dagster_postgres(timeout: float = 3.0) -> None:
    """Fail fast, naming host and port only (never the password), when Dagster's PostgreSQL is not there:
    dagster-postgres itself retries for about 20 seconds before it gives up."""
    import socket

    from sqlalchemy.engine import make_url

    url = os.environ.get("HYBRID_DAGSTER_PG_URL")
    if not url:
        raise ConfigError("HYBRID_DAGSTER_PG_URL is not set (Dagster's storage is in PostgreSQL)")
    parsed = make_url(url)
    address = (parsed.host or "localhost", parsed.port or 5432)
    try:
        socket.create_connection(address, timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(
            f"Dagster's PostgreSQL at {address[0]}:{address[1]} is unreachable ({type(exc).__name__})"
        ) from None


def collect(
    settings: Settings,
    url: str = DEFAULT_URL,
    timeout: float = HTTP_TIMEOUT_S,
    stuck_after_s: float | None = None,
) -> dict:
    """Everything `hybrid status` shows, as one JSON-ready dict; ``problems`` lists what needs attention."""
    report: dict = {
        "profile": settings.profile,
        "hybrid_home": str(settings.home),
        "dagster_home": str(settings.dagster_home),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "errors": {},
    }
    instance = None
    if not (settings.dagster_home / "dagster.yaml").exists():
        report["dagster_instance"] = "none yet: nothing has run on this home (`hybrid demo` or `make ui`)"
    else:
        try:
            from hybrid_cli.platform import dagster_instance

            if settings.profile == "hybrid":
                _check_dagster_postgres()
            instance = dagster_instance(settings)
            report["dagster_instance"] = "ok"
        except Exception as exc:
            report["errors"]["dagster_instance"] = _one_line(exc)
    try:
        locations = location_definitions()
    except Exception as exc:
        report["errors"]["definitions"] = _one_line(exc)
        locations = {}
    for name, fn in (("assets", asset_status), ("checks", check_status)):
        report[name] = []
        if "dagster_instance" in report["errors"]:
            continue  # unknown, not "never materialized"
        try:
            report[name] = fn(instance, locations)
        except Exception as exc:  # e.g. Dagster's PostgreSQL storage went down in between
            report["errors"][name] = _one_line(exc)
    stuck_after_s = parse_duration(DEFAULT_STUCK_AFTER) if stuck_after_s is None else stuck_after_s
    report["runs"] = {"stuck_after_s": stuck_after_s, "jobs": [], "stuck": []}
    if "dagster_instance" not in report["errors"]:
        try:
            report["runs"] = run_status(instance, locations, stuck_after_s)
        except Exception as exc:
            report["errors"]["runs"] = _one_line(exc)
    try:
        if settings.profile == "hybrid" and not settings.s3_bucket:
            raise ConfigError("HYBRID_S3_BUCKET is not set (the registry lives in that bucket)")
        report["production_model"] = production_model(settings)
    except Exception as exc:  # e.g. the S3 API is down
        report["errors"]["production_model"] = _one_line(exc)
        report["production_model"] = None
    report["endpoint"] = endpoint_health(url, timeout)
    report["problems"] = _problems(report)
    return report


def _problems(report: dict) -> list[str]:
    problems = [f"could not read {part}: {error}" for part, error in report["errors"].items()]
    never = [a["asset"] for a in report["assets"] if a["last_materialized"] is None]
    if never:
        problems.append(f"never materialized: {', '.join(never)}")
    for c in report["checks"]:
        if c["result"] == "FAIL":  # ERROR severity; a WARN result is shown but needs no attention
            problems.append(
                f"asset {c['asset']}: check {c['check']} failed (ERROR severity) at {c['evaluated_at']}"
                f" in run {c['run_id']}"
            )
    runs = report.get("runs") or {}
    for job in runs.get("jobs", []):
        if job["failed"]:
            run = job["latest_finished"]
            problems.append(
                f"job {job['job']} ({job['location']}): latest finished run {run['run_id']} "
                f"{run['status']} at {run['ended_at'] or run['created_at']}"
                + (f": {run['message']}" if run["message"] else "")
            )
    for run in runs.get("stuck", []):
        problems.append(
            f"run {run['run_id']} of job {run['job']} stuck: {run['status']} for {_duration(run['for_s'])} "
            f"(since {run['since']}; limit {_duration(runs['stuck_after_s'])}): if its process is gone, "
            "terminate it in the Dagster UI"
        )
    if report["production_model"] is None and "production_model" not in report["errors"]:
        problems.append("no production model")
    if not report["endpoint"]["ready"]:
        problems.append(f"endpoint {report['endpoint']['url']} is not ready")
    return problems


_AGE_UNITS = (("s", 1, 120), ("min", 60, 7200), ("h", 3600, 172800), ("d", 86400, float("inf")))


def _when(iso: str | None) -> str:
    if iso is None:
        return "-"
    moment = datetime.fromisoformat(iso)
    age = max(0.0, time.time() - moment.timestamp())
    unit, size = next((u, s) for u, s, upto in _AGE_UNITS if age < upto)
    return f"{moment.astimezone():%Y-%m-%d %H:%M:%S} ({age / size:.0f} {unit} ago)"


def _duration(seconds: float) -> str:
    unit, size = next((u, s) for u, s, upto in _AGE_UNITS if seconds < upto)
    return f"{seconds / size:.1f}".removesuffix(".0") + f" {unit}"


def _short(run_id: str | None) -> str:
    return run_id[:8] if run_id else "-"


def _why(report: dict, part: str) -> str:
    errors = report["errors"]
    return errors.get(part) or errors.get("definitions") or errors.get("dagster_instance") or "none found"


def render(report: dict) -> str:
    """The terminal view of ``collect()``."""
    out = [
        f"hybrid status: profile {report['profile']}, HYBRID_HOME {report['hybrid_home']}",
        f"Dagster instance {report['dagster_home']}: "
        + report.get("dagster_instance", f"unreadable ({report['errors'].get('dagster_instance')})"),
        "",
        "Assets (last materialization)",
    ]
    for a in report["assets"]:
        when = _when(a["last_materialized"]) if a["last_materialized"] else "never materialized"
        parts = f"  {p['materialized']}/{p['total'] or '?'} partitions" if (p := a["partitions"]) else ""
        run = f"  run {_short(a['run_id'])}" if a["run_id"] else ""
        out.append(f"  {a['location']:6s}  {a['asset']:24s}  {when}{run}{parts}")
    if not report["assets"]:
        out.append(f"  unavailable: {_why(report, 'assets')}")
    out += [
        "",
        "Checks (latest result)",
        f"  {'result':7s} {'severity':8s} {'blocking':8s} {'check':56s} when",
    ]
    for c in report["checks"]:
        name, blocking = f"{c['asset']}.{c['check']}", "yes" if c["blocking"] else "no"
        severity = c["severity"] if c["result"] in ("WARN", "FAIL") else "-"  # a passed check has none
        line = f"  {c['result']:7s} {severity:8s} {blocking:8s} {name:56s} {_when(c['evaluated_at'])}"
        if c["run_id"]:
            line += f"  run {_short(c['run_id'])}"
        if c["result"] in ("WARN", "FAIL") and c["description"]:
            line += f"\n            {c['description'][:200]}"
        if skipped := c["not_evaluated_in_run"]:
            line += f"\n            not evaluated in the latest run {_short(skipped['run_id'])}: {skipped['state']}"
        out.append(line)
    if not report["checks"]:
        out.append(f"  unavailable: {_why(report, 'checks')}")
    runs = report.get("runs") or {"jobs": [], "stuck": [], "stuck_after_s": None}
    out += ["", "Runs (latest per job)"]
    for job in runs["jobs"]:
        latest, finished = job["latest"], job["latest_finished"]
        if latest is None:
            out.append(f"  {job['location']:6s}  {job['job']:18s}  never run")
            continue
        line = (
            f"  {job['location']:6s}  {job['job']:18s}  {latest['status']:9s} "
            f"{_when(latest['ended_at'] or latest['started_at'] or latest['created_at'])}"
            f"  run {_short(latest['run_id'])}"
        )
        if finished is not None and finished["run_id"] != latest["run_id"]:
            line += f"\n            latest finished: {finished['status']} {_when(finished['ended_at'])}"
            line += f"  run {_short(finished['run_id'])}"
        if job["failed"] and finished["message"]:
            line += f"\n            {finished['message'][:200]}"
        out.append(line)
    if not runs["jobs"]:
        out.append(f"  unavailable: {_why(report, 'runs')}")
    limit = _duration(runs["stuck_after_s"]) if runs["stuck_after_s"] else "?"
    out += ["", f"Stuck runs (queued, starting, started or canceling for over {limit})"]
    for run in runs["stuck"]:
        out.append(
            f"  {run['status']:9s} {run['job']:18s}  run {run['run_id']}  for {_duration(run['for_s'])}"
            f" (since {_when(run['since'])})"
        )
    if not runs["stuck"]:
        out.append("  none" if "runs" not in report["errors"] else f"  unknown: {report['errors']['runs']}")
    out += ["", "Production model (registry pointer)"]
    model = report["production_model"]
    if model:
        baseline = model["recency_baseline_auc"]
        out.append(
            f"  {model['version']}  AUC {model['auc']:.4f}"
            + (f" (recency baseline {baseline:.4f})" if baseline is not None else "")
            + f"  promoted {_when(model['promoted_at'])}"
        )
        if model["model_card"]:
            out.append(f"  model card: {model['model_card']}")
    elif "production_model" in report["errors"]:
        out.append(f"  unreadable: {report['errors']['production_model']}")
    else:
        out.append("  none deployed yet")
    endpoint = report["endpoint"]
    out += ["", f"Endpoint {endpoint['url']}"]
    for path in ("health", "ready"):
        answer = endpoint["responses"][path]
        if "error" in answer:
            text = answer["error"] + (": is `hybrid serve` running there?" if path == "health" else "")
        else:
            text = f"{answer['status_code']} {json.dumps(answer['body'])}"
        out.append(f"  /{path:7s}{text}")
    assets, checks = report["assets"], report["checks"]
    done = sum(a["last_materialized"] is not None for a in assets)
    counts = {r: sum(c["result"] == r for c in checks) for r in ("PASS", "WARN", "FAIL", "NOT RUN")}
    served = model["version"] if model else "unknown" if "production_model" in report["errors"] else "none"
    reach = (
        "ready" if endpoint["ready"] else "reachable, not ready" if endpoint["reachable"] else "unreachable"
    )
    out += [
        "",
        f"Summary: {done}/{len(assets)} assets materialized; checks {counts['PASS']} passed, "
        f"{counts['WARN']} warnings, {counts['FAIL']} failed, {counts['NOT RUN']} not run; "
        f"production model {served}; endpoint {reach}; "
        f"jobs {sum(j['failed'] for j in runs['jobs'])} failed, {len(runs['stuck'])} stuck runs"
        if assets
        else f"Summary: assets and checks unknown; production model {served}; endpoint {reach}",
    ]
    out += [f"  attention: {p}" for p in report["problems"]]
    return "\n".join(out)


def main(
    url: str = DEFAULT_URL,
    as_json: bool = False,
    strict: bool = False,
    timeout: float = HTTP_TIMEOUT_S,
    stuck_after: str | float | None = None,
) -> int:
    """`hybrid status`; see the module docstring for the exit codes. ``stuck_after``: see
    :func:`parse_duration` (a string such as ``"6h"``, or seconds); None: DEFAULT_STUCK_AFTER."""
    try:
        stuck_after_s = parse_duration(DEFAULT_STUCK_AFTER if stuck_after is None else stuck_after)
    except ValueError as exc:
        print(f"hybrid status: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("HYBRID_S3_TIMEOUT_S", S3_TIMEOUT_S)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"hybrid status: {exc}")
        return 2
    report = collect(settings, url=url, timeout=timeout, stuck_after_s=stuck_after_s)
    print(json.dumps(report, indent=2, default=str) if as_json else render(report))
    return 1 if strict and report["problems"] else 0
