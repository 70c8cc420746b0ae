"""`hybrid`: the platform's command line. Run `hybrid --help`."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from hybrid_assets.catalog import LABELS_EXPORT_KEY
from hybrid_assets.settings import FEATURE_REPO, Settings, require_services
from hybrid_assets.settings import load_settings as _load_settings


def load_settings() -> Settings:
    """Settings of the active profile; the hybrid profile must know where its services are."""
    return require_services(_load_settings())


def _generator(settings: Settings):
    from hybrid_assets.generator import Generator
    from resources.object_store import ObjectStore
    from resources.warehouse import warehouse_for

    store = ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint)
    return Generator(settings.home, warehouse_for(settings), store)


def cmd_generate(args) -> int:
    settings = load_settings()
    gen = _generator(settings)
    if gen.exists():
        if args.days is None:
            print(f"synthetic data already in {settings.home}; `hybrid generate --days N` appends N days")
            return 0
        report = gen.append(days=args.days)
        print(f"appended {json.dumps(report)}")
    else:
        report = gen.create(
            n_customers=args.customers,
            days=args.days or 180,
            seed=args.seed,
            start=date.fromisoformat(args.start),
        )
        print(f"generated {json.dumps(report)}")
    return 0


def cmd_truth(args) -> int:
    from hybrid_assets.generator import true_churn_probability
    from resources.warehouse import warehouse_for

    settings = load_settings()
    frame = true_churn_probability(settings.home, warehouse_for(settings), date.fromisoformat(args.snapshot))
    if args.out:
        frame.write_csv(args.out)
        print(f"wrote {frame.height} rows to {args.out}")
    else:
        print(frame)
    return 0


def cmd_feast_config(args) -> int:
    from resources.feature_store import feature_store_yaml

    settings = load_settings()
    target = FEATURE_REPO / "feature_store.yaml"
    target.write_text(feature_store_yaml(settings.home, settings.profile, settings.redis_url))
    print(f"wrote {target} for the {settings.profile} profile (HYBRID_HOME={settings.home})")
    return 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _print_outcome(outcome) -> None:
    print(f"\n== {outcome.location} location: {'succeeded' if outcome.success else 'FAILED'}")
    for check in outcome.checks:
        print(
            f"  [{check.status}] {check.asset}.{check.check}"
            + (f": {check.description[:240]}" if check.status != "PASS" else "")
        )
    for failure in outcome.step_failures:
        print(f"  [STEP FAILED] {failure[:400]}")


def cmd_backfill(args) -> int:
    from datetime import date

    from hybrid_assets.platform import backfill_onprem, dagster_instance

    first, last = date.fromisoformat(args.start), date.fromisoformat(args.end)
    if last < first:
        print(f"--end {last} is before --start {first}", file=sys.stderr)
        return 2
    settings = load_settings()
    print(f"backfilling the on-prem partitions {first} .. {last} (profile {settings.profile}) in one run ...")
    ok, run_id = backfill_onprem(first, last, dagster_instance(settings))
    print(f"run {run_id}: {'succeeded' if ok else 'FAILED (see the run in the Dagster UI)'}")
    return 0 if ok else 1


def cmd_demo(args) -> int:
    from hybrid_assets.platform import dagster_instance, run_location

    settings = load_settings()
    print(f"profile {settings.profile}, HYBRID_HOME {settings.home}")
    gen = _generator(settings)
    if not gen.exists():
        print(f"generating {args.customers} customers over {args.days} days ...")
        print(json.dumps(gen.create(n_customers=args.customers, days=args.days)))
    cmd_feast_config(args)
    instance = dagster_instance(settings)
    outcomes = []
    for location in ("onprem", "cloud"):
        outcome = run_location(location, instance)
        outcomes.append(outcome)
        _print_outcome(outcome)
        if not outcome.success:
            failed = [f"{c.asset}.{c.check}" for c in outcome.blocking_failures]
            reason = f"blocking check(s) failed: {', '.join(failed)}" if failed else "a step failed"
            print(f"\nDEMO FAILED in the {location} location: {reason}", file=sys.stderr)
            return 1
    onprem, cloud = outcomes
    print("\n== summary")
    for table in ("customers", "transactions", "support_tickets"):
        meta = onprem.materialized.get(table, {})
        print(
            f"  {table:16s} {meta.get('rows_read', 0):>9} rows read, {meta.get('dagster/row_count', 0):>9} accepted, "
            f"{meta.get('rows_quarantined', 0):>6} quarantined"
        )
    for asset in ("customer_features", "churn_labels", "training_set"):
        meta = {**onprem.materialized.get(asset, {}), **cloud.materialized.get(asset, {})}
        print(f"  {asset:16s} {meta.get('dagster/row_count', 0):>9} rows")
    checks = onprem.checks + cloud.checks
    print(
        f"  checks           {sum(c.status == 'PASS' for c in checks)} passed, "
        f"{sum(c.status == 'WARN' for c in checks)} warnings, {sum(c.status == 'FAIL' for c in checks)} failed"
    )
    from resources.model_registry import ModelRegistry
    from resources.object_store import ObjectStore

    production = ModelRegistry(
        ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint)
    ).production()
    if production:
        m = production["metrics"]
        print(
            f"  production model {production['version']}: AUC {m['auc']:.4f} (recency baseline "
            f"{m.get('recency_baseline_auc', float('nan')):.4f}), log loss {m['log_loss']:.4f}"
        )
    return _demo_prediction(settings, cloud)


def _demo_prediction(settings: Settings, cloud) -> int:
    import httpx

    from resources.object_store import ObjectStore

    customer = int(
        ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint).read_parquet(
            LABELS_EXPORT_KEY, columns=["customer_id"]
        )["customer_id"][0]
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hybrid_assets.cli", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                print(server.stderr.read().decode()[-2000:], file=sys.stderr)
                print("DEMO FAILED: the endpoint did not start", file=sys.stderr)
                return 1
            time.sleep(0.5)
        response = httpx.post(f"{base}/predict", json={"customer_id": customer}, timeout=10)
        body = response.json()
        print(
            f'  POST {base}/predict {{"customer_id": {customer}}} -> {response.status_code}: '
            f"churn_probability {body.get('churn_probability'):.4f}, model {body.get('model_version')}"
        )
        return 0 if response.status_code == 200 else 1
    finally:
        server.terminate()
        server.wait(timeout=20)


def cmd_serve(args) -> int:
    import os
    import shutil
    import tempfile

    import uvicorn

    # prometheus_client's multiprocess mode: every worker writes its counters here and /metrics sums them.
    # Set before any worker imports prometheus_client; a fresh folder per server start.
    metrics_dir = tempfile.mkdtemp(prefix="hybrid-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
            access_log=False,  # the app writes structured access logs itself (serving/observability.py)
            loop="uvloop",
            http="httptools",
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_docs(args) -> int:
    from hybrid_assets import catalog
    from hybrid_assets.settings import REPO_ROOT

    target = REPO_ROOT / "docs" / "features.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text(catalog.features_markdown())
    print(f"wrote {target}")
    return 0


def cmd_ui(args) -> int:
    import os

    from hybrid_assets.platform import prepare_dagster_home
    from hybrid_assets.settings import REPO_ROOT

    settings = load_settings()
    cmd_feast_config(args)
    home = prepare_dagster_home(settings)
    print(f"Dagster instance {home}; UI on http://{args.host}:{args.port}")
    os.chdir(REPO_ROOT)
    dagster = str(Path(sys.executable).with_name("dagster"))
    os.execv(dagster, [dagster, "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)])
    return 0


def cmd_services(args) -> int:
    from hybrid_assets import services

    home = _load_settings(apply_env_file=False).home
    if args.action == "up":
        services.up(home)
    else:
        services.down(home)
    return 0


def cmd_quarantine(args) -> int:
    """On-prem only: it reads the warehouse. The full rows (PII included) are shown here, to people who may see
    them on the on-prem side; Dagster only ever gets their keys, reasons and non-PII columns."""
    from resources.warehouse import PLATFORM_SCHEMA, QUARANTINE_TABLE, warehouse_for

    settings = load_settings()
    wh = warehouse_for(settings)
    if not wh.table_exists("quarantine", PLATFORM_SCHEMA):
        print("no quarantine table yet: materialize the raw assets first")
        return 0
    print(
        wh.query(
            f"select source_table, reason, count(*) as rows from {QUARANTINE_TABLE} group by 1, 2 order by 1, 3 desc"
        )
    )
    if args.show:
        where, params = ("where source_table = ?", [args.table]) if args.table else ("", [])
        rows = wh.query(
            f"select detected_at, source_table, row_key, reason, row_json from {QUARANTINE_TABLE} {where} "
            "order by detected_at desc, source_table, row_key limit ?",
            [*params, args.show],
        )
        print(f"\nthe {rows.height} newest quarantined rows (full rows: on-prem eyes only)")
        for at, table, key, reason, row in rows.iter_rows():
            print(f"{at:%Y-%m-%d %H:%M:%S}  {table} {key}: {reason}\n    {row}")
    return 0


def cmd_errors(args) -> int:
    """On-prem only: the unscrubbed errors of on-prem steps, whose scrubbed messages Dagster shows with an id."""
    from hybrid_assets.onprem.residency import STEP_ERRORS_TABLE
    from resources.warehouse import PLATFORM_SCHEMA, warehouse_for

    wh = warehouse_for(load_settings())
    if not wh.table_exists("step_errors", PLATFORM_SCHEMA):
        print("no on-prem step has failed with an unexpected error")
        return 0
    where, params = ("where error_id = ?", [args.id]) if args.id else ("", [])
    rows = wh.query(
        f"select error_id, detected_at, run_id, step, error_class, message, traceback from {STEP_ERRORS_TABLE} "
        f"{where} order by detected_at desc limit ?",
        [*params, args.show],
    )
    if not rows.height:
        print(f"no on-prem step error with id {args.id}" if args.id else "no on-prem step errors")
        return 1 if args.id else 0
    for error_id, at, run_id, step, cls, message, trace in rows.iter_rows():
        print(f"== {error_id}  {at:%Y-%m-%d %H:%M:%S}  run {run_id}  step {step}: {cls}\n{message}")
        if args.id:
            print(trace)
    return 0


def cmd_status(args) -> int:
    from hybrid_assets import status

    return status.main(url=args.url, as_json=args.json, strict=args.strict, timeout=args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybrid", description="Hybrid-cloud churn ML platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="create synthetic on-prem and marketing data, or append --days N")
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--days", type=int, default=None, help="days to generate (180 on first run) or to append")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default="2026-04-01", help="first day of the synthetic history")
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser(
        "backfill", help="materialize the on-prem daily partitions --start..--end in one multiprocess run"
    )
    p.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    p.set_defaults(fn=cmd_backfill)
    p = sub.add_parser("demo", help="generate if needed, materialize both locations, predict over HTTP")
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--days", type=int, default=180)
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser("serve", help="start the prediction endpoint (FastAPI + uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes (one per core is a good start; default 1)"
    )
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("truth", help="the generator's true churn probability per customer at a snapshot")
    p.add_argument("--snapshot", required=True, help="YYYY-MM-DD")
    p.add_argument("--out", type=Path)
    p.set_defaults(fn=cmd_truth)

    p = sub.add_parser("quarantine", help="what the gates quarantined, by table and reason")
    p.add_argument("--show", type=int, default=0, help="also print the N newest quarantined rows, in full")
    p.add_argument("--table", help="only rows of this source table (with --show)")
    p.set_defaults(fn=cmd_quarantine)

    p = sub.add_parser(
        "errors",
        help="on-prem step errors with their unscrubbed messages (on-prem only: they may hold row values)",
    )
    p.add_argument(
        "id", nargs="?", help="one error id (from the scrubbed message in Dagster): its traceback too"
    )
    p.add_argument("--show", type=int, default=10, help="how many of the newest errors to list (default 10)")
    p.set_defaults(fn=cmd_errors)

    p = sub.add_parser(
        "ui", help="Dagster webserver and daemon (dagster dev) on the instance under HYBRID_HOME"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(fn=cmd_ui)

    p = sub.add_parser("services", help="start (up) or stop (down) local PostgreSQL, S3 API and Redis")
    p.add_argument("action", choices=["up", "down"])
    p.set_defaults(fn=cmd_services)

    p = sub.add_parser(
        "status", help="what is materialized, latest check results, production model, endpoint health"
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the prediction endpoint to ask")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each endpoint request")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if something needs attention (missing asset, failed check, no model, endpoint not ready)",
    )
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("docs", help="regenerate docs/features.md from the feature catalog")
    p.set_defaults(fn=cmd_docs)

    p = sub.add_parser("feast-config", help="write feature_repo/feature_store.yaml for the active profile")
    p.set_defaults(fn=cmd_feast_config)

    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
