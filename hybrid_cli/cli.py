"""`hybrid`: the platform's command line, argument parsing only (the commands are in commands.py and demo.py).
Run `hybrid --help`.

A configuration error (a setting out of range, a bad HYBRID_PROFILE or HYBRID_HOME) or a bad argument is one
line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from core.settings import ConfigError
from hybrid_cli.commands import (
    DEFAULT_CUSTOMERS,
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_START,
    cmd_backfill,
    cmd_cluster,
    cmd_demo,
    cmd_docs,
    cmd_errors,
    cmd_feast_config,
    cmd_generate,
    cmd_import,
    cmd_quarantine,
    cmd_run,
    cmd_sample,
    cmd_serve,
    cmd_services,
    cmd_sources,
    cmd_status,
    cmd_truth,
    cmd_ui,
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


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verbose", action="store_true", help="also print Dagster's event log (DEBUG) of both runs"
    )


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
    _verbose(p)
    p.set_defaults(fn=cmd_demo)

    p = sub.add_parser(
        "run",
        help="materialize both locations on the warehouse's own data (no generation), predict over HTTP",
    )
    _verbose(p)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser(
        "sample",
        help="write a real public dataset to a file, for `hybrid import` (cdnow: CDNOW's 69,659 purchases, "
        "from the lifetimes package)",
    )
    p.add_argument("dataset", choices=["cdnow"])
    p.add_argument("file", type=Path, help="the .parquet file to write")
    p.set_defaults(fn=cmd_sample)

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

    p = sub.add_parser(
        "sources",
        help="check: every source table of the warehouse against its contract (tables, columns, types); exit 1 "
        "with one line per problem",
    )
    p.add_argument("action", choices=["check"])
    p.set_defaults(fn=cmd_sources)

    p = sub.add_parser(
        "import",
        help="load a CSV or Parquet file into a table of the warehouse, in one transaction (a source table's "
        "columns are cast to its contract's types)",
    )
    p.add_argument("table", help="the table, e.g. transactions")
    p.add_argument("file", type=Path, help="a .csv (with a header) or .parquet file")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--replace", action="store_true", help="replace the table if it exists")
    mode.add_argument("--append", action="store_true", help="add the rows to the existing table")
    p.set_defaults(fn=cmd_import)

    p = sub.add_parser("docs", help="regenerate docs/features.md from the feature catalog")
    p.set_defaults(fn=cmd_docs)

    p = sub.add_parser(
        "feast-config", help="make $HYBRID_HOME/feast the Feast repo of the active profile (for feast -c)"
    )
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
