"""`hybrid`: the platform's command line. Run `hybrid --help`.

A configuration error (a setting out of range, a bad HYBRID_PROFILE or HYBRID_HOME) or a bad argument is one
line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from core.settings import FEATURE_REPO, ConfigError, Settings, require_services
from core.settings import load_settings as _load_settings

DEFAULT_CUSTOMERS, DEFAULT_DAYS, DEFAULT_SEED, DEFAULT_START = 20_000, 180, 7, date(2026, 4, 1)


def load_settings(writable: bool = False) -> Settings:
    """Settings of the active profile; the hybrid profile must know where its services are. ``writable``:
    the command writes under HYBRID_HOME, so it must be a folder this process can write (or create)."""
    return require_services(_load_settings(writable=writable))


def _generator(settings: Settings):
    from hybrid_cli.generator import Generator
    from resources.object_store import ObjectStore
    from resources.warehouse import warehouse_for

    store = ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint)
    return Generator(settings.home, warehouse_for(settings), store, profile=settings.profile)


def _restore_marketing(gen) -> None:
    """The warehouse has the data but the object store lost the marketing files: write them again."""
    if gen.marketing_missing():
        print(
            f"the {gen.store.describe()} has no marketing files for the data in the warehouse: replaying them"
        )
        print(f"restored {json.dumps(gen.restore_marketing())}")


def cmd_generate(args) -> int:
    settings = load_settings(writable=True)
    from hybrid_cli.generator import undo_new_paths

    with undo_new_paths(settings.home):  # a failed first generation leaves the home as it was
        gen = _generator(settings)
        if gen.exists():
            _restore_marketing(gen)
            ignored = [
                f"--{name}" for name in ("customers", "seed", "start") if getattr(args, name) is not None
            ]
            if ignored:
                print(f"ignored (they only shape the first generation): {', '.join(ignored)}")
            if args.days is None:
                print(
                    f"synthetic data already in the {gen.warehouse.describe()} (profile {settings.profile}); "
                    "`hybrid generate --days N` appends N days"
                )
                return 0
            report = gen.append(days=args.days)
            print(f"appended {json.dumps(report)}")
        else:
            report = gen.create(
                n_customers=args.customers or DEFAULT_CUSTOMERS,
                days=args.days or DEFAULT_DAYS,
                seed=DEFAULT_SEED if args.seed is None else args.seed,
                start=args.start or DEFAULT_START,
            )
            print(f"generated {json.dumps(report)}")
    return 0


def cmd_truth(args) -> int:
    from hybrid_cli.generator import true_churn_probability
    from resources.warehouse import warehouse_for

    settings = load_settings()
    frame = true_churn_probability(settings.home, warehouse_for(settings), args.snapshot)
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
    first, last = args.start, args.end
    if last < first:
        print(f"hybrid backfill: error: --end {last} is before --start {first}", file=sys.stderr)
        return 2
    settings = load_settings(writable=True)
    from hybrid_cli.platform import backfill_onprem, dagster_instance

    print(f"backfilling the on-prem partitions {first} .. {last} (profile {settings.profile}) in one run ...")
    ok, run_id = backfill_onprem(first, last, dagster_instance(settings))
    print(f"run {run_id}: {'succeeded' if ok else 'FAILED (see the run in the Dagster UI)'}")
    return 0 if ok else 1


def _quiet_dagster() -> None:
    """Without --verbose: no Dagster beta/preview warnings while the definitions load (the event log's
    console level is set per run, in run_location)."""
    import warnings

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)


def cmd_demo(args) -> int:
    settings = load_settings(writable=True)
    from hybrid_cli.generator import undo_new_paths
    from hybrid_cli.platform import dagster_instance, run_location

    if not args.verbose:
        _quiet_dagster()
    print(f"profile {settings.profile}, HYBRID_HOME {settings.home}")
    timings = {}
    with undo_new_paths(settings.home):  # a failed first generation leaves the home as it was
        gen = _generator(settings)
        if gen.exists():
            _restore_marketing(gen)
        else:
            print(f"generating {args.customers} customers over {args.days} days ...")
            started = time.monotonic()
            print(json.dumps(gen.create(n_customers=args.customers, days=args.days)))
            timings["generate"] = time.monotonic() - started
    cmd_feast_config(args)
    instance = dagster_instance(settings)
    outcomes = []
    for location in ("onprem", "cloud"):
        if args.verbose:
            print(f"\n== running the {location} location (Dagster's event log follows)")
        started = time.monotonic()
        # the event log at DEBUG is hundreds of lines: only with --verbose; otherwise only Dagster's errors
        outcome = run_location(location, instance, log_level="DEBUG" if args.verbose else "ERROR")
        timings[location] = time.monotonic() - started
        outcomes.append(outcome)
        _print_outcome(outcome)
        print(f"  ({location} run took {timings[location]:.1f} s)")
        if not outcome.success:
            failed = [f"{c.asset}.{c.check}" for c in outcome.blocking_failures]
            reason = f"blocking check(s) failed: {', '.join(failed)}" if failed else "a step failed"
            hint = "" if args.verbose else " (rerun with --verbose for Dagster's event log)"
            print(f"\nDEMO FAILED in the {location} location: {reason}{hint}", file=sys.stderr)
            return 1
    onprem, cloud = outcomes
    print("\n== summary")
    print("  run time         " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
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

    from core.catalog import LABELS_EXPORT_KEY
    from resources.object_store import ObjectStore

    customer = int(
        ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint).read_parquet(
            LABELS_EXPORT_KEY, columns=["customer_id"]
        )["customer_id"][0]
    )
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hybrid_cli.cli", "serve", "--port", str(port)],
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
    from serving.run import serve

    return serve(host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)


def cmd_docs(args) -> int:
    from core import catalog
    from core.settings import REPO_ROOT

    target = REPO_ROOT / "docs" / "features.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text(catalog.features_markdown())
    print(f"wrote {target}")
    return 0


def cmd_ui(args) -> int:
    import os

    from core.settings import REPO_ROOT
    from hybrid_cli.platform import prepare_dagster_home

    settings = load_settings(writable=True)
    cmd_feast_config(args)
    home = prepare_dagster_home(settings)
    print(f"Dagster instance {home}; UI on http://{args.host}:{args.port}")
    os.chdir(REPO_ROOT)
    dagster = str(Path(sys.executable).with_name("dagster"))
    os.execv(dagster, [dagster, "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)])
    return 0


def cmd_services(args) -> int:
    from hybrid_cli import services

    home = _load_settings(apply_env_file=False, writable=args.action == "up").home
    if args.action == "up":
        services.up(home)
    else:
        services.down(home)
    return 0


def cmd_cluster(args) -> int:
    from hybrid_cli import cluster

    home = _load_settings(apply_env_file=True, writable=True).home  # workers inherit services.env's S3 keys
    if args.action == "up":
        cluster.up(home, workers=args.workers)
    else:
        cluster.down(home)
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
    _load_settings()  # a bad setting: one line on stderr and exit 2 (main), like every command
    from hybrid_cli import status

    return status.main(
        url=args.url,
        as_json=args.json,
        strict=args.strict,
        timeout=args.timeout,
        stuck_after=args.stuck_after,
    )


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, without the usage block: exit 2, naming the argument."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _whole(low: int):
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text} is less than {low}; it must be {low} or more")
        return value

    return whole


_positive, _non_negative = _whole(1), _whole(0)


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (1 to 65535)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD ({exc})") from None


def _known_errors() -> tuple[type[Exception], ...]:
    """Errors whose message says it all (the data or a service, not a bug): one line, exit 1."""
    from hybrid_cli.generator import GeneratorStateError
    from resources.object_store import ObjectStoreError
    from resources.warehouse import WarehouseError

    return GeneratorStateError, WarehouseError, ObjectStoreError


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="hybrid", description="Hybrid-cloud churn ML platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="create synthetic on-prem and marketing data, or append --days N")
    p.add_argument(
        "--customers",
        type=_positive,
        help=f"customers (1 or more; default {DEFAULT_CUSTOMERS}; first run only)",
    )
    p.add_argument(
        "--days",
        type=_positive,
        help=f"days to generate (1 or more; default {DEFAULT_DAYS} on the first run) or to append",
    )
    p.add_argument("--seed", type=_non_negative, help=f"random seed (default {DEFAULT_SEED}; first run only)")
    p.add_argument(
        "--start",
        type=_day,
        help=f"first day of the synthetic history, YYYY-MM-DD (default {DEFAULT_START}; first run only)",
    )
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser(
        "backfill", help="materialize the on-prem daily partitions --start..--end in one multiprocess run"
    )
    p.add_argument("--start", required=True, type=_day, help="first day, YYYY-MM-DD")
    p.add_argument("--end", required=True, type=_day, help="last day, YYYY-MM-DD (inclusive)")
    p.set_defaults(fn=cmd_backfill)
    p = sub.add_parser("demo", help="generate if needed, materialize both locations, predict over HTTP")
    p.add_argument("--customers", type=_positive, default=DEFAULT_CUSTOMERS, help="customers if it generates")
    p.add_argument("--days", type=_positive, default=DEFAULT_DAYS, help="days if it generates")
    p.add_argument(
        "--verbose", action="store_true", help="also print Dagster's event log (DEBUG) of both runs"
    )
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
    p.add_argument("--snapshot", required=True, type=_day, help="YYYY-MM-DD")
    p.add_argument("--out", type=Path)
    p.set_defaults(fn=cmd_truth)

    p = sub.add_parser("quarantine", help="what the gates quarantined, by table and reason")
    p.add_argument(
        "--show", type=_non_negative, default=0, help="also print the N newest quarantined rows, in full"
    )
    p.add_argument("--table", help="only rows of this source table (with --show)")
    p.set_defaults(fn=cmd_quarantine)

    p = sub.add_parser(
        "errors",
        help="on-prem step errors with their unscrubbed messages (on-prem only: they may hold row values)",
    )
    p.add_argument(
        "id", nargs="?", help="one error id (from the scrubbed message in Dagster): its traceback too"
    )
    p.add_argument(
        "--show", type=_non_negative, default=10, help="how many of the newest errors to list (default 10)"
    )
    p.set_defaults(fn=cmd_errors)

    p = sub.add_parser(
        "ui", help="Dagster webserver and daemon (dagster dev) on the instance under HYBRID_HOME"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_port, default=3000)
    p.set_defaults(fn=cmd_ui)

    p = sub.add_parser("services", help="start (up) or stop (down) local PostgreSQL, S3 API and Redis")
    p.add_argument("action", choices=["up", "down"])
    p.set_defaults(fn=cmd_services)

    p = sub.add_parser(
        "cluster",
        help="start (up) or stop (down) local Dask clusters, one per site (scheduler + workers on loopback); "
        "up writes HYBRID_DASK_SCHEDULER and HYBRID_ONPREM_DASK_SCHEDULER to $HYBRID_HOME/cluster.env",
    )
    p.add_argument("action", choices=["up", "down"])
    p.add_argument("--workers", type=_positive, default=2, help="worker processes per site (default 2)")
    p.set_defaults(fn=cmd_cluster)

    p = sub.add_parser(
        "status", help="what is materialized, latest check results, production model, endpoint health"
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the prediction endpoint to ask")
    p.add_argument("--timeout", type=_seconds, default=2.0, help="seconds to wait for each endpoint request")
    p.add_argument(
        "--stuck-after",
        default=None,
        metavar="DURATION",
        help="a run queued, starting, started or canceling for longer is stuck (e.g. 90m, 6h, 1d; "
        "a bare number is minutes; default 6h)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if something needs attention (missing asset, failed ERROR check, failed or stuck run, "
        "no model, endpoint not ready)",
    )
    p.set_defaults(fn=cmd_status)

    p = sub.add_parser("docs", help="regenerate docs/features.md from the feature catalog")
    p.set_defaults(fn=cmd_docs)

    p = sub.add_parser("feast-config", help="write feature_repo/feature_store.yaml for the active profile")
    p.set_defaults(fn=cmd_feast_config)

    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as exc:  # a setting or an argument: the user fixes it
        print(f"hybrid {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except _known_errors() as exc:  # the data or a service says no: the message names it
        print(f"hybrid {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
