"""`hybrid demo`: generate data if needed, run both code locations in process, print a summary and one
prediction from a real endpoint process over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

from core.settings import Settings
from hybrid_cli.commands import cmd_feast_config, generator_for, load_settings, restore_marketing


def free_port() -> int:
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


def _quiet_dagster() -> None:
    """Without --verbose: no Dagster beta/preview warnings while the definitions load (the event log's
    console level is set per run, in run_location)."""
    import warnings

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)


def run(args, generate: bool = True) -> int:
    """Generate if needed (``generate``; `hybrid run`: never, the warehouse holds your tables), run both
    locations, print a summary and one prediction."""
    settings = load_settings(writable=True)
    from hybrid_cli.generator import undo_new_paths
    from hybrid_cli.platform import dagster_instance, run_location

    if not args.verbose:
        _quiet_dagster()
    print(f"profile {settings.profile}, HYBRID_HOME {settings.home}")
    timings = {}
    if generate:
        with undo_new_paths(settings.home):  # a failed first generation leaves the home as it was
            gen = generator_for(settings)
            if gen.exists():
                restore_marketing(gen)
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
    port = free_port()
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
