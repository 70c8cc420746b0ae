"""The `hybrid` commands other than the demo (hybrid_cli/demo.py): each takes the parsed arguments and returns the
exit status. Argument parsing is in hybrid_cli/cli.py."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from core.settings import FEATURE_REPO, ConfigError, Settings, require_services
from core.settings import load_settings as settings_of_profile

DEFAULT_CUSTOMERS, DEFAULT_DAYS, DEFAULT_SEED, DEFAULT_START = 20_000, 180, 7, date(2026, 4, 1)


def load_settings(writable: bool = False) -> Settings:
    """Settings of the active profile; the hybrid profile must know where its services are. ``writable``:
    the command writes under HYBRID_HOME, so it must be a folder this process can write (or create)."""
    return require_services(settings_of_profile(writable=writable))


def generator_for(settings: Settings):
    from hybrid_cli.generator import Generator
    from resources.object_store import ObjectStore
    from resources.warehouse import warehouse_for

    store = ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint)
    return Generator(settings.home, warehouse_for(settings), store, profile=settings.profile)


def restore_marketing(gen) -> None:
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
        gen = generator_for(settings)
        if gen.exists():
            restore_marketing(gen)
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
    """Make $HYBRID_HOME/feast the active profile's Feast repo (feature_store.yaml + churn_repo.py)."""
    from resources.feature_store import GENERATED, REDIS_ENV, REPO_FILE, write_feast_repo

    # the cloud host runs the Feast CLI without the on-prem DSN: only the bucket is needed here (the Redis
    # password stays in the environment, as HYBRID_FEAST_REDIS)
    settings = settings_of_profile(writable=True)
    if settings.profile == "hybrid" and not settings.s3_bucket:
        raise ConfigError(
            "the hybrid profile needs HYBRID_S3_BUCKET (Feast's sources are in it): set it, or run `make "
            f"services` to write {settings.home / 'services.env'}"
        )
    folder = write_feast_repo(
        settings.home, settings.profile, settings.object_store_root, settings.s3_endpoint, settings.redis_url
    )
    print(f"wrote {folder}/feature_store.yaml and {REPO_FILE} for the {settings.profile} profile")
    # earlier versions wrote the yaml into the source tree; Feast's apply there would now find no objects and
    # delete them all from the registry, so a copy of ours goes
    stale = FEATURE_REPO / "feature_store.yaml"
    marker = GENERATED.partition("{profile}")[0]
    if stale.is_file() and stale.read_text().startswith(marker):
        stale.unlink()
        print(f"removed the old {stale}: the Feast repo is {folder} now")
    print(f"Feast CLI: feast -c {folder} plan | apply | ui")
    if settings.profile == "hybrid":
        env_file = settings.home / "services.env"
        source = f"`set -a; . {env_file}; set +a`" if env_file.is_file() else "export them"
        print(
            f"  with {REDIS_ENV} and the AWS_* variables in the environment: {source} (README: The Feast CLI)"
        )
    return 0


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


def cmd_serve(args) -> int:
    from serving.run import serve

    return serve(host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)


def cmd_docs(args) -> int:
    """docs/features.md for this deployment's source mapping (the generator's: every feature)."""
    from core import catalog
    from core.settings import REPO_ROOT
    from core.sources import load

    target = REPO_ROOT / "docs" / "features.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text(catalog.features_markdown(load(load_settings().sources_file).switched_off()))
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

    home = settings_of_profile(apply_env_file=False, writable=args.action == "up").home
    if args.action == "up":
        services.up(home)
    else:
        services.down(home)
    return 0


def cmd_cluster(args) -> int:
    from hybrid_cli import cluster

    home = settings_of_profile(
        apply_env_file=True, writable=True
    ).home  # workers inherit services.env's S3 keys
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


def cmd_sources(args) -> int:
    """`hybrid sources check`: every source table against its contract; exit 1 naming each problem."""
    from core.sources import load
    from hybrid_cli.sources import check, feature_lines
    from resources.warehouse import warehouse_for

    settings = load_settings()
    wh = warehouse_for(settings)
    sources = load(settings.sources_file)
    problems, fine = check(wh, sources)
    print(
        f"source tables in the {wh.describe()} (profile {settings.profile}), mapped by {settings.sources_file}, "
        "against core/contracts.py:"
    )
    for line in fine:
        print(f"  ok  {line}")
    for line in problems:
        print(f"  !!  {line}")
    if not sources.marketing_events:
        print("  --  marketing events: none (`marketing_events: false`)")
    for line in feature_lines(sources):
        print(f"  {line}")
    if problems:
        print(f"{len(problems)} problem(s): the raw assets would stop on them; nothing was run")
        return 1
    print("every source table matches its contract: the graph can run on them")
    return 0


def cmd_import(args) -> int:
    """`hybrid import TABLE FILE`: a CSV or Parquet file into a warehouse table, in one transaction."""
    from hybrid_cli.sources import SourceFileError, import_file
    from resources.warehouse import warehouse_for

    settings = load_settings(writable=True)
    wh = warehouse_for(settings)
    mode = "replace" if args.replace else "append" if args.append else "create"
    try:
        rows = import_file(wh, args.table, args.file, mode)
    except SourceFileError as exc:
        print(f"hybrid import: {exc}", file=sys.stderr)
        return 1
    print(
        f"{rows} rows of {args.file} {'added to' if mode == 'append' else 'in'} table {args.table} of the {wh.describe()}"
    )
    print("next: `hybrid sources check`")
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
    settings_of_profile()  # a bad setting: one line on stderr and exit 2 (main), like every command
    from hybrid_cli import status

    return status.main(
        url=args.url,
        as_json=args.json,
        strict=args.strict,
        timeout=args.timeout,
        stuck_after=args.stuck_after,
    )


def cmd_demo(args) -> int:
    from hybrid_cli import demo

    return demo.run(args)


def cmd_run(args) -> int:
    """`hybrid run`: the demo's runs and prediction on the warehouse as it is (your own tables, through the
    source mapping); nothing is generated."""
    from hybrid_cli import demo

    return demo.run(args, generate=False)


def cmd_sample(args) -> int:
    """`hybrid sample cdnow FILE`: CDNOW's purchases as a Parquet file under the dataset's own column names."""
    from hybrid_cli.sources import cdnow

    frame = cdnow()
    args.file.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(args.file)
    print(
        f"{frame.height} purchases by {frame['customer_id'].n_unique()} customers, {frame['date'].min()} to "
        f"{frame['date'].max()} ({', '.join(f'{c} {t}' for c, t in frame.schema.items())}) in {args.file}"
    )
    print(f"next: `hybrid import cdnow_purchases {args.file}`")
    return 0
