"""Online-store load: our loader (resources/online_loader.py) against ``FeatureStore.materialize``.

Same feature views (the platform's own, from feature_repo/), same rows, same Redis and the same S3 offline
store, measured in the same run: rows/s for both, and our peak RSS at each size (which must not grow with the
row count: the loader streams record batches). Each variant runs in its own process. After both loads the
benchmark compares every Redis hash the two wrote, byte for byte, and reports ``identical``.

    make services && .venv/bin/python -m benchmarks.materialize            # 100k and 1M entity rows
    .venv/bin/python -m benchmarks.materialize --sizes 20000               # a quick look

Needs the hybrid services (`make services`): it uses Redis databases 14 and 15 and the prefix
``bench/materialize/`` of the bucket, never the platform's own data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from benchmarks.common import peak_rss_mb, print_table, run_measured, write_result
from benchmarks.platform import with_db

FEAST_DB, OURS_DB = 14, 15
PREFIX = "bench/materialize"
AS_OF = datetime(2026, 11, 30)


def _settings():
    from core.settings import load_settings, require_services

    settings = require_services(load_settings())
    if settings.profile != "hybrid":
        raise SystemExit(
            "the benchmarks run on the hybrid profile: `make services` first (HYBRID_PROFILE=hybrid)"
        )
    return settings


def _object_store(settings):
    from resources.object_store import ObjectStore

    return ObjectStore(f"{settings.object_store_root}/{PREFIX}", endpoint=settings.s3_endpoint)


def _keys(n: int) -> dict[str, str]:
    from core import catalog

    # the same object keys as the platform's Feast sources, under the benchmark's own prefix, so that feature_repo.build()
    # points the platform's feature views at the benchmark files
    return {view: f"{n}/{key}" for view, key in catalog.VIEW_OFFLINE_KEY.items()}


def make_data(n: int) -> None:
    """n customers with one snapshot each (the nightly load), every feature of both views."""
    from core import catalog

    settings = _settings()
    store = _object_store(settings)
    rng = np.random.default_rng(n)
    for view, key in _keys(n).items():
        if store.exists(key):
            continue
        columns = {
            catalog.ENTITY_KEY: np.arange(n, dtype=np.int64),
            catalog.EVENT_TS: [AS_OF - timedelta(hours=int(h)) for h in rng.integers(0, 48, n)],
        }
        for f in catalog.features_of(view):
            if f.dtype == "int64":
                columns[f.name] = rng.poisson(3, n).astype(np.int64)
            else:
                columns[f.name] = np.round(rng.gamma(2.0, 20.0, n), 4)
        frame = pl.DataFrame(columns).with_columns(pl.col(catalog.EVENT_TS).cast(pl.Datetime("us")))
        store.write_parquet(key, frame)


def _feature_store(n: int, db: int):
    """A Feast store over the platform's feature views whose sources are the benchmark files."""
    import os

    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from core.settings import load_settings
    from feature_repo.repo import build
    from resources.feature_store import FEAST_PROJECT, redis_connection_string

    settings = load_settings()
    root = f"{settings.object_store_root}/{PREFIX}/{n}"
    redis_url = with_db(settings.redis_url, str(db))
    home = settings.home / "bench" / "feast"
    home.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project=FEAST_PROJECT,
        provider="local",
        registry={
            "registry_type": "file",
            "path": str(home / f"registry_{n}_{db}.db"),
            "cache_ttl_seconds": 0,
        },
        offline_store={"type": "file"},
        online_store={"type": "redis", "connection_string": redis_connection_string(redis_url)},
        entity_key_serialization_version=3,
        repo_path=str(home),
    )
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    store = FeatureStore(config=config)
    objects = build(root, settings.s3_endpoint)
    store.apply(list(objects.values()))
    return store


def _redis(db: int):
    import redis

    from core.settings import load_settings

    return redis.Redis.from_url(with_db(load_settings().redis_url, str(db)))


def run_feast(n: int) -> dict:
    _redis(FEAST_DB).flushdb()
    store = _feature_store(n, FEAST_DB)
    t0 = time.perf_counter()
    store.materialize(start_date=AS_OF - timedelta(days=7), end_date=AS_OF + timedelta(days=1))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": n, "peak_rss_mb": peak_rss_mb()}


def run_ours(n: int) -> dict:
    from core import catalog
    from resources.online_loader import load_view

    _redis(OURS_DB).flushdb()
    settings = _settings()
    store = _feature_store(n, OURS_DB)
    objects = _object_store(settings)
    t0 = time.perf_counter()
    written = 0
    for view, key in _keys(n).items():
        report = load_view(
            store,
            view,
            objects.iter_batches(key),
            start=AS_OF - timedelta(days=7),
            end=AS_OF + timedelta(days=1),
        )
        written += report.written
    seconds = time.perf_counter() - t0
    assert written == n * len(catalog.VIEW_SOURCE_KEY), written
    return {"seconds": seconds, "rows": n, "peak_rss_mb": peak_rss_mb()}


def compare(n: int) -> dict:
    """Every hash both loaders wrote, byte for byte, and the same customers through the Feast SDK."""
    feast_db, ours_db = _redis(FEAST_DB), _redis(OURS_DB)
    keys = sorted(feast_db.scan_iter(count=10_000))
    ours_keys = set(ours_db.scan_iter(count=10_000))
    if set(keys) != ours_keys:
        return {"identical": False, "why": f"key sets differ: {len(keys)} vs {len(ours_keys)}"}
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        p1, p2 = feast_db.pipeline(transaction=False), ours_db.pipeline(transaction=False)
        for k in chunk:
            p1.hgetall(k)
            p2.hgetall(k)
        for k, a, b in zip(chunk, p1.execute(), p2.execute(), strict=True):
            if a != b:
                return {"identical": False, "why": f"hash {k!r} differs"}
    return {"identical": True, "keys": len(keys)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--child", choices=["feast", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = (run_feast if args.child == "feast" else run_ours)(args.n)
        print(json.dumps(result))
        return 0

    figures: dict = {"sizes": args.sizes, "feature_views": 2}
    rows = []
    for n in args.sizes:
        make_data(n)
        feast = run_measured(
            [sys.executable, "-m", "benchmarks.materialize", "--child", "feast", "--n", str(n)]
        )
        ours = run_measured(
            [sys.executable, "-m", "benchmarks.materialize", "--child", "ours", "--n", str(n)]
        )
        check = compare(n)
        for db in (FEAST_DB, OURS_DB):  # millions of keys would slow every later Redis restart (AOF replay)
            _redis(db).flushdb()
        if not check["identical"]:
            raise SystemExit(f"the loaders disagree at {n} rows: {check['why']}")
        label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}m"
        feast_rps, ours_rps = n / feast["seconds"], n / ours["seconds"]
        figures[f"feast_rows_per_s_{label}"] = feast_rps
        figures[f"ours_rows_per_s_{label}"] = ours_rps
        figures[f"feast_peak_rss_mb_{label}"] = feast["peak_rss_mb"]
        figures[f"ours_peak_rss_mb_{label}"] = ours["peak_rss_mb"]
        figures[f"speedup_{label}"] = ours_rps / feast_rps
        figures[f"identical_{label}"] = True
        rows.append(["FeatureStore.materialize", n, feast["seconds"], feast_rps, feast["peak_rss_mb"], 1.0])
        rows.append(
            ["ours (online_loader)", n, ours["seconds"], ours_rps, ours["peak_rss_mb"], ours_rps / feast_rps]
        )
    largest = max(args.sizes)
    big = f"{largest // 1000}k" if largest < 1_000_000 else f"{largest // 1_000_000}m"
    figures["ours_rows_per_s"] = figures[f"ours_rows_per_s_{big}"]
    figures["feast_rows_per_s"] = figures[f"feast_rows_per_s_{big}"]
    print_table(
        "Online-store load, 2 feature views (22 features), Redis + S3 offline store; entity rows per second",
        ["loader", "entity rows", "seconds", "rows/s", "peak RSS MB", "x feast"],
        rows,
    )
    print(f"  written hashes identical byte for byte: yes ({len(args.sizes)} sizes)")
    print(f"  -> {write_result('materialize', figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
