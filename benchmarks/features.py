"""Benchmark of the on-prem feature computation: ``catalog.compute_features`` for the ``customer_activity``
view (18 features) against the same features written in plain pandas (``benchmarks/pandas_features.py``).

What is measured
    Three variants, each in its own child process (``common.run_measured``) so that its peak RSS is its own:

    - ``ours``   at 10M transactions: ``catalog.compute_features`` (Polars), called as the
      ``customer_features`` asset calls it;
    - ``pandas`` at 10M transactions: the reference, boolean masks + ``groupby().agg()`` + ``merge``;
    - ``ours``   at 50M transactions (5x everything: customers and tickets scale with the transactions, so
      each customer looks the same and only the volume grows).

    Each child reads the cached Parquet input (untimed, identical for both sides: PyArrow reads the columns
    the asset selects and casts ``amount`` DECIMAL(12,2) to double as the asset's SQL does, then converts to
    a Polars or a pandas frame) and builds the spine (untimed), then times the feature computation alone.
    Each variant runs ``--repeat`` times (3); the fastest run counts. Peak RSS is the child's high-water mark
    during the computation (reset after loading, so the loading transient is not in it, the loaded input is),
    the highest of the runs.

    Besides wall seconds the table shows the computation's CPU seconds (all threads) and "others' CPUs": how
    many CPUs other processes used meanwhile. On a shared machine the latter says how far to trust the wall
    times (``--wait-idle`` waits for a quiet machine before each run).

Snapshots
    One ``as_of`` per customer: the serving snapshot, midnight after the last transaction day (``data_end``
    of the asset), over every customer signed up before it. ``--snapshots N`` adds the N-1 preceding weekly
    Monday snapshots (the training-set workload) instead.

Data
    Synthesised with NumPy (seeded, vectorised) in the schema of the warehouse tables (``expectations/raw``):
    180 days of history; 85% of customers signed up before it, 15% during it; 12% left before it and 20% churn
    during it; lognormal purchase rates, 45% of customers slowing down; lognormal amounts around a
    per-customer level; a favourite category and a channel preference per customer; tickets at a tenth of the
    transactions, more and worse for customers with more friction, 8% never resolved. Only accepted rows (no
    quarantine cases). Cached under ``$HYBRID_HOME/bench/data/``.

Check
    The 10M outputs of both sides must agree: integers exactly, floats within 1e-9 relative. Otherwise the
    benchmark writes ``equal: false`` and exits non-zero.

Targets (from the issue): ours >= 4x faster than pandas with less peak memory; 10M -> 50M about linear.

    python -m benchmarks.features                                            # full size
    python -m benchmarks.features --transactions 1000000 --customers 50000 --large-transactions 0  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.common import (
    bench_dir,
    peak_rss_mb,
    print_table,
    reset_peak_rss,
    run_measured,
    system_cpu_s,
    wait_for_idle,
    write_result,
)

NAME = "features"  # other sizes than FULL_SIZE write features-t<transactions>-c<customers>.json
FULL_SIZE = (10_000_000, 500_000, 50_000_000)  # transactions, customers, transactions of the scaling run
DATA_START = date(2026, 4, 1)  # the generator's default start
DAY_S = 86_400
TXN_COLUMNS = ["customer_id", "amount", "category", "channel", "event_ts"]  # what the asset selects
TICKET_COLUMNS = ["customer_id", "opened_ts", "severity", "resolved_ts"]
CUSTOMER_COLUMNS = ["customer_id", "signup_date", "plan"]
FLOAT_RTOL = 1e-9
BUSY_CPUS = 0.25  # other processes using more than this many CPUs during a timed step: a busy machine


# -- synthetic input --------------------------------------------------------------------------------
def dataset_dir(transactions: int, customers: int, tickets: int, days: int, seed: int) -> Path:
    return bench_dir() / "data" / f"t{transactions}_c{customers}_k{tickets}_d{days}_s{seed}"


def _decimal_cents(cents: np.ndarray):
    """A DECIMAL(12,2) Arrow array holding exactly ``cents / 100`` (no float rounding on the way)."""
    import pyarrow as pa

    words = np.zeros((len(cents), 2), dtype=np.int64)  # little-endian 128-bit: low word, high word (0)
    words[:, 0] = cents
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words)])


def _timestamps(seconds: np.ndarray, mask: np.ndarray | None = None):
    import pyarrow as pa

    start = np.datetime64(DATA_START, "us")
    values = start + (seconds * 1_000_000).astype("timedelta64[us]")
    return pa.array(values, type=pa.timestamp("us"), mask=mask)


def synthesize(path: Path, transactions: int, customers: int, tickets: int, days: int, seed: int) -> dict:
    """Write customers, transactions and support_tickets Parquet files (warehouse schema) under ``path``."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.contracts import CATEGORIES, CHANNELS, PLANS, REGIONS, SEVERITIES
    from hybrid_cli.generator import FIRST, LAST

    rng = np.random.default_rng(seed)
    n, span = customers, days * DAY_S

    # customers; ids follow signup order
    existing = rng.random(n) < 0.85
    signup_day = np.sort(np.where(existing, -rng.integers(30, 3 * 365, n), rng.integers(0, days, n)))
    plan = rng.choice(len(PLANS), n, p=[0.5, 0.35, 0.15])
    friction = rng.normal(0, 1, n)
    rate = np.exp(rng.normal(0, 0.8, n)) * np.where(plan == 2, 1.25, 1.0)
    spend_mu = rng.normal(3.3, 0.5, n)
    favourite = rng.integers(0, len(CATEGORIES), n)
    explore = rng.uniform(0.05, 0.9, n)
    online_pref = rng.uniform(0, 1, n)
    slowing = rng.random(n) < 0.45
    # active interval [first, last) in seconds from DATA_START
    first = np.maximum(signup_day, 0).astype(np.int64) * DAY_S
    left_before = rng.random(n) < 0.12
    churns = rng.random(n) < 0.20
    last = np.where(churns, first + (rng.random(n) * (span - first)).astype(np.int64), span)
    active = np.where(left_before, 0, last - first)

    # transactions: counts per customer ~ rate x active time, times spread over the active interval
    weight = rate * active
    owner = np.repeat(np.arange(n), rng.multinomial(transactions, weight / weight.sum()))
    u = rng.random(transactions)
    u = np.where(slowing[owner], u**1.8, u)  # slowing customers buy early in their interval
    ts = first[owner] + (u * active[owner]).astype(np.int64)
    del u
    order = np.argsort(ts, kind="stable")  # the table is appended day by day: rows come in time order
    owner, ts = owner[order], ts[order]
    del order
    m = transactions
    cents = np.maximum(1, np.rint(np.exp(rng.normal(spend_mu[owner], 0.6)) * 100)).astype(np.int64)
    category = np.where(rng.random(m) < explore[owner], rng.integers(0, len(CATEGORIES), m), favourite[owner])
    v, pref = rng.random(m), online_pref[owner]
    channel = np.where(v < pref * 0.7, 0, np.where(v < pref * 0.7 + 0.3, 2, 1))  # online, app, store
    del v, pref
    lag = rng.integers(60, 6 * 3600, m)
    txn_table = pa.table(
        {
            "transaction_id": pa.array(np.arange(1, m + 1, dtype=np.int64)),
            "customer_id": pa.array(owner + 1),
            "amount": _decimal_cents(cents),
            "category": pa.array(CATEGORIES).take(pa.array(category)),
            "channel": pa.array(CHANNELS).take(pa.array(channel)),
            "event_ts": _timestamps(ts),
            "ingested_at": _timestamps(ts + lag),
        }
    )
    del owner, cents, category, channel, lag
    last_day = DATA_START + timedelta(days=int(ts.max() // DAY_S))
    del ts

    # support tickets: more for customers with friction, worse and slower to resolve too
    k = tickets
    weight = np.exp(0.9 * friction) * active
    t_owner = np.repeat(np.arange(n), rng.multinomial(k, weight / weight.sum()))
    opened = first[t_owner] + (rng.random(k) * active[t_owner]).astype(np.int64)
    order = np.argsort(opened, kind="stable")
    t_owner, opened = t_owner[order], opened[order]
    severity = np.digitize(friction[t_owner] + rng.normal(0, 1, k), [-0.3, 0.9, 1.9])
    hours = rng.exponential(24 * np.exp(0.4 * friction[t_owner]))
    resolved = opened + (hours * 3600).astype(np.int64)
    unresolved = rng.random(k) < 0.08
    ticket_table = pa.table(
        {
            "ticket_id": pa.array(np.arange(1, k + 1, dtype=np.int64)),
            "customer_id": pa.array(t_owner + 1),
            "opened_ts": _timestamps(opened),
            "severity": pa.array(SEVERITIES).take(pa.array(severity)),
            "resolved_ts": _timestamps(resolved, mask=unresolved),
        }
    )

    first_name = np.array(FIRST)[rng.integers(0, len(FIRST), n)]
    last_name = np.array(LAST)[rng.integers(0, len(LAST), n)]
    ids = np.arange(1, n + 1, dtype=np.int64)
    people = pl.DataFrame(
        {
            "customer_id": ids,
            "first": first_name,
            "last": last_name,
            "birth_date": np.datetime64(DATA_START, "D") - rng.integers(18 * 365, 80 * 365, n),
            "signup_date": np.datetime64(DATA_START, "D") + signup_day,
            "region": np.array(REGIONS)[rng.integers(0, len(REGIONS), n)],
            "plan": np.array(PLANS)[plan],
        }
    ).select(
        "customer_id",
        pl.concat_str("first", pl.lit(" "), "last").alias("full_name"),
        pl.concat_str("first", pl.lit("."), "last", pl.lit("."), "customer_id", pl.lit("@example.com"))
        .str.to_lowercase()
        .alias("email"),
        pl.format(
            "+1-555-{}-{}",
            (pl.col("customer_id") % 1000).cast(pl.String).str.zfill(3),
            ((pl.col("customer_id") * 7919) % 10000).cast(pl.String).str.zfill(4),
        ).alias("phone"),
        "birth_date",
        "signup_date",
        "region",
        "plan",
    )

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pq.write_table(txn_table, tmp / "transactions.parquet", row_group_size=1_000_000)
    pq.write_table(ticket_table, tmp / "support_tickets.parquet", row_group_size=1_000_000)
    people.write_parquet(tmp / "customers.parquet")
    meta = {
        "transactions": m,
        "customers": n,
        "support_tickets": k,
        "days": days,
        "seed": seed,
        "data_start": DATA_START.isoformat(),
        "data_end": (last_day + timedelta(days=1)).isoformat(),  # as the asset's data_window
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return meta


def ensure_dataset(transactions: int, customers: int, tickets: int, days: int, seed: int, regenerate: bool):
    path = dataset_dir(transactions, customers, tickets, days, seed)
    if regenerate or not (path / "meta.json").exists():
        print(f"synthesising {transactions:,} transactions, {customers:,} customers, {tickets:,} tickets ...")
        start = time.perf_counter()
        synthesize(path, transactions, customers, tickets, days, seed)
        print(f"  written to {path} in {time.perf_counter() - start:.1f} s")
        sys.stdout.flush()
    return path, json.loads((path / "meta.json").read_text())


def snapshots(meta: dict, count: int) -> list[datetime]:
    """The serving snapshot (``data_end``) plus the ``count - 1`` weekly snapshots before it."""
    from core import catalog

    snaps = catalog.feature_snapshots(
        date.fromisoformat(meta["data_start"]), date.fromisoformat(meta["data_end"])
    )
    return snaps[-count:]


# -- one measured variant (child process) -------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _read_arrow(data: Path):
    """The asset's three queries, from Parquet: same columns, ``cast(amount as double precision)``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    txns = pq.read_table(data / "transactions.parquet", columns=TXN_COLUMNS)
    txns = txns.set_column(1, "amount", txns["amount"].cast(pa.float64()))
    tickets = pq.read_table(data / "support_tickets.parquet", columns=TICKET_COLUMNS)
    customers = pq.read_table(data / "customers.parquet", columns=CUSTOMER_COLUMNS)
    return customers, txns, tickets


def _measured(load, compute, write) -> dict:
    """Load (untimed), then time ``compute`` alone; its peak RSS starts from the loaded input."""
    import pyarrow as pa

    start = time.perf_counter()
    inputs, transactions = load()
    pa.default_memory_pool().release_unused()  # what the conversion left in Arrow's pool
    load_s, load_peak, rss_loaded = time.perf_counter() - start, peak_rss_mb(), _rss_mb()
    reset = reset_peak_rss()

    start, cpu, machine_cpu = time.perf_counter(), time.process_time(), system_cpu_s()
    out = compute(*inputs)
    compute_s, peak = time.perf_counter() - start, peak_rss_mb()
    compute_cpu_s = time.process_time() - cpu  # all threads
    others_cpus = max(0.0, system_cpu_s() - machine_cpu - compute_cpu_s) / compute_s
    write(out)
    return {
        "load_s": load_s,
        "compute_s": compute_s,
        "compute_cpu_s": compute_cpu_s,
        "others_cpus": others_cpus,
        "load_peak_rss_mb": load_peak,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": peak if reset else max(peak, load_peak),
        "peak_excludes_load": reset,
        "rows_out": len(out),
        "transactions": transactions,
    }


def _run_ours(data: Path, as_of: list[datetime], output: Path | None) -> dict:
    import polars as pl

    from core import catalog

    def load():
        people, txns, tickets = (pl.from_arrow(t) for t in _read_arrow(data))
        spine = people.join(pl.DataFrame({"as_of": as_of}), how="cross").filter(
            pl.col("signup_date") < pl.col("as_of").dt.date()
        )
        sources = {"transactions": txns, "support_tickets": tickets}
        return (catalog.features_of(catalog.ACTIVITY_VIEW), spine, sources, people), txns.height

    def write(out):
        if output is not None:
            out.write_parquet(output)

    return _measured(load, catalog.compute_features, write)


def _run_pandas(data: Path, as_of: list[datetime], output: Path | None) -> dict:
    import pandas as pd

    from benchmarks.pandas_features import customer_activity

    def load():
        people, txns, tickets = (t.to_pandas() for t in _read_arrow(data))
        spine = people.merge(pd.DataFrame({"as_of": pd.to_datetime(as_of).as_unit("us")}), how="cross")
        spine = spine[pd.to_datetime(spine["signup_date"]) < spine["as_of"].dt.normalize()]
        return (spine, txns, tickets, people), len(txns)

    def write(out):
        if output is not None:
            out.to_parquet(output, index=False)

    return _measured(load, customer_activity, write)


def child(args: argparse.Namespace) -> None:
    as_of = [datetime.fromisoformat(s) for s in args.as_of.split(",")]
    output = Path(args.output) if args.output else None
    run = _run_ours if args.child == "ours" else _run_pandas
    print(json.dumps(run(Path(args.data), as_of, output)))


# -- equality check -----------------------------------------------------------------------------------
def compare(ours_path: Path, pandas_path: Path) -> list[str]:
    """Differences between the two outputs (empty: equal). Integers exactly, floats within FLOAT_RTOL."""
    import polars as pl

    from core import catalog

    ours, ref = pl.read_parquet(ours_path), pl.read_parquet(pandas_path)
    if ours.columns != ref.columns:
        return [f"columns differ: {ours.columns} vs {ref.columns}"]
    if ours.height != ref.height:
        return [f"row counts differ: {ours.height:,} vs {ref.height:,}"]
    problems = []
    for key in (catalog.ENTITY_KEY, catalog.EVENT_TS):
        if not ours[key].cast(ref[key].dtype).equals(ref[key]):
            problems.append(f"{key}: the rows are not the same customers/snapshots")
    if problems:
        return problems
    for f in catalog.features_of(catalog.ACTIVITY_VIEW):
        a, b = ours[f.name], ref[f.name]
        if a.dtype != catalog.polars_dtype(f) or b.dtype != catalog.polars_dtype(f):
            problems.append(f"{f.name}: dtypes {a.dtype} / {b.dtype}, expected {f.dtype}")
            continue
        x, y = a.to_numpy(), b.to_numpy()
        if f.dtype == "int64":
            bad = x != y
        else:
            bad = ~np.isclose(x, y, rtol=FLOAT_RTOL, atol=0.0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(
                f"{f.name}: {int(bad.sum()):,} rows differ, e.g. customer {ours[catalog.ENTITY_KEY][i]}: "
                f"ours {x[i]!r} vs pandas {y[i]!r}"
            )
    return problems


# -- the benchmark (parent process) -------------------------------------------------------------------
def measure(
    variant: str, data: Path, as_of: list[datetime], output: Path | None, repeat: int, wait_idle: float
) -> dict:
    """Best of ``repeat`` child processes by compute time (the machine is shared); the peak RSS is the
    highest of them. The first run writes the output for the equality check.

    With ``wait_idle``, each run first waits for a quiet machine, and a run during which other processes
    took more than ``BUSY_CPUS`` does not count: it is retried, up to ``3 * repeat`` runs in all (if too few
    runs were quiet, the best of all runs counts)."""
    runs: list[dict] = []

    def quiet() -> list[dict]:
        return [r for r in runs if r["others_cpus"] <= BUSY_CPUS]

    while len(runs) < repeat or (wait_idle > 0 and len(quiet()) < repeat and len(runs) < 3 * repeat):
        argv = [sys.executable, "-m", "benchmarks.features", "--child", variant, "--data", str(data)]
        argv += ["--as-of", ",".join(a.isoformat() for a in as_of)]
        if output is not None and not runs:
            argv += ["--output", str(output)]
        if wait_idle > 0:
            wait_for_idle(wait_idle, BUSY_CPUS)
        runs.append(run_measured(argv))
        r = runs[-1]
        print(
            f"  {variant:6} {data.name}  run {len(runs)}: {r['compute_s']:.2f} s, others' CPUs {r['others_cpus']:.2f}"
        )
        sys.stdout.flush()
    counted = quiet() if wait_idle > 0 and len(quiet()) >= repeat else runs
    best = dict(min(counted, key=lambda r: r["compute_s"]))
    best["runs_s"] = [r["compute_s"] for r in runs]
    best["runs_others_cpus"] = [r["others_cpus"] for r in runs]
    for key in ("peak_rss_mb", "load_peak_rss_mb"):
        best[key] = max(r[key] for r in runs)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.features", description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=FULL_SIZE[0])
    parser.add_argument("--customers", type=int, default=FULL_SIZE[1])
    parser.add_argument("--tickets", type=int, help="support tickets (default: transactions / 10)")
    parser.add_argument(
        "--large-transactions",
        type=int,
        default=FULL_SIZE[2],
        help="transactions of the scaling run, customers and tickets scaled alike (0: skip it)",
    )
    parser.add_argument("--days", type=int, default=180, help="days of history")
    parser.add_argument("--snapshots", type=int, default=1, help="1: the serving snapshot only")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant; the fastest counts")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to leave the CPUs (shared machines)",
    )
    parser.add_argument("--regenerate", action="store_true", help="synthesise the input again")
    parser.add_argument("--child", choices=["ours", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    tickets = args.tickets if args.tickets is not None else args.transactions // 10
    data, meta = ensure_dataset(
        args.transactions, args.customers, tickets, args.days, args.seed, args.regenerate
    )
    large = None
    if args.large_transactions:
        scale = args.large_transactions / args.transactions
        large = ensure_dataset(
            args.large_transactions,
            round(args.customers * scale),
            round(tickets * scale),
            args.days,
            args.seed,
            args.regenerate,
        )
    as_of = snapshots(meta, args.snapshots)

    work = bench_dir() / "work"
    work.mkdir(exist_ok=True)
    ours_out, pandas_out = work / "features_ours.parquet", work / "features_pandas.parquet"
    load_before = os.getloadavg()[0]
    ours = measure("ours", data, as_of, ours_out, args.repeat, args.wait_idle)
    ref = measure("pandas", data, as_of, pandas_out, args.repeat, args.wait_idle)
    problems = compare(ours_out, pandas_out)
    big = None
    if large:
        big = measure(
            "ours", large[0], snapshots(large[1], args.snapshots), None, args.repeat, args.wait_idle
        )
    load_average = [load_before, os.getloadavg()[0]]  # other work on the machine inflates wall times

    peak_note = (
        "peak RSS = high-water mark during the computation, the loaded input included (the loading transient "
        "excluded; see load_peak_rss_mb in the JSON)"
        if ours["peak_excludes_load"]
        else "peak RSS = high-water mark of the whole child, loading included"
    )
    quiet = " quiet" if args.wait_idle > 0 else ""
    print(
        f"\nsnapshots: {', '.join(f'{a:%Y-%m-%d}' for a in as_of)} ({args.snapshots} per customer)\n"
        f"seconds = feature computation only, best of {args.repeat}{quiet} child processes: reading the Parquet "
        "input and building the spine are excluded on both sides\n" + peak_note
    )

    def row(name: str, m: dict, r: dict) -> list:
        return [
            name,
            m["transactions"],
            m["customers"],
            r["compute_s"],
            r["compute_cpu_s"],
            r["others_cpus"],
            r["rss_after_load_mb"],
            r["peak_rss_mb"],
        ]

    rows = [row("ours (polars)", meta, ours), row("pandas", meta, ref)]
    if big:
        rows.append(row("ours (polars)", large[1], big))
    print_table(
        "customer_activity features (18), one child process per variant",
        [
            "variant",
            "transactions",
            "customers",
            "seconds",
            "CPU s",
            "others' CPUs",
            "input RSS MB",
            "peak RSS MB",
        ],
        rows,
    )
    speedup = ref["compute_s"] / ours["compute_s"]
    memory_ratio = ref["peak_rss_mb"] / ours["peak_rss_mb"]
    print(f"  speedup (pandas / ours): {speedup:.1f}x   peak RSS pandas / ours: {memory_ratio:.2f}x")
    figures = {
        "ours_s": ours["compute_s"],
        "pandas_s": ref["compute_s"],
        "ours_peak_rss_mb": ours["peak_rss_mb"],
        "pandas_peak_rss_mb": ref["peak_rss_mb"],
        "speedup": speedup,
        "peak_rss_ratio": memory_ratio,
        "equal": not problems,
        "rows": meta["transactions"],
        "customers": meta["customers"],
        "support_tickets": meta["support_tickets"],
        "output_rows": ours["rows_out"],
        "snapshots": [f"{a:%Y-%m-%d}" for a in as_of],
        "days_of_history": meta["days"],
        "timed": f"feature computation only, best of {args.repeat}{quiet} runs (Parquet read and spine excluded)",
        "peak_rss": peak_note,
        "ours_cpu_s": ours["compute_cpu_s"],
        "pandas_cpu_s": ref["compute_cpu_s"],
        "ours_others_cpus": ours["others_cpus"],
        "pandas_others_cpus": ref["others_cpus"],
        "load_average_1m": load_average,
        "ours_runs_s": ours["runs_s"],
        "pandas_runs_s": ref["runs_s"],
        "ours_load_peak_rss_mb": ours["load_peak_rss_mb"],
        "pandas_load_peak_rss_mb": ref["load_peak_rss_mb"],
        "ours_load_s": ours["load_s"],
        "pandas_load_s": ref["load_s"],
        "ours_rss_after_load_mb": ours["rss_after_load_mb"],
        "pandas_rss_after_load_mb": ref["rss_after_load_mb"],
        "target_speedup_met": speedup >= 4 and memory_ratio > 1,
    }
    if big:
        time_ratio = big["compute_s"] / ours["compute_s"]
        rows_ratio = large[1]["transactions"] / meta["transactions"]
        print(f"  50M/10M time ratio: {time_ratio:.2f} (rows ratio {rows_ratio:.1f})")
        figures |= {
            "ours_s_50m": big["compute_s"],
            "ours_peak_rss_mb_50m": big["peak_rss_mb"],
            "ours_cpu_s_50m": big["compute_cpu_s"],
            "ours_others_cpus_50m": big["others_cpus"],
            "ours_runs_s_50m": big["runs_s"],
            "rows_50m": large[1]["transactions"],
            "customers_50m": large[1]["customers"],
            "support_tickets_50m": large[1]["support_tickets"],
            "time_ratio_50m_10m": time_ratio,
            "rows_ratio_50m_10m": rows_ratio,
        }
    print(f"  equal (ints exact, floats within {FLOAT_RTOL:g} relative): {not problems}")
    others = max(r["others_cpus"] for r in (ours, ref, big) if r)
    figures["machine_busy"] = others > BUSY_CPUS
    if figures["machine_busy"]:
        print(
            f"  WARNING: other processes used up to {others:.1f} of the {os.cpu_count()} CPUs while a variant "
            "was timed (others' CPUs): wall times are inflated, the multi-threaded ones most; CPU s is steadier"
        )
    full_size = (args.transactions, args.customers, args.large_transactions) == FULL_SIZE
    path = write_result(NAME if full_size else f"{NAME}-t{args.transactions}-c{args.customers}", figures)
    print(f"\nwritten {path}")
    if problems:
        print("\nours and pandas DIFFER:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
