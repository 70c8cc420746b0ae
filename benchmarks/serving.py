"""Serving: our ``POST /predict`` (online lookup + LightGBM + JSON) against ``feast serve``'s
``POST /get-online-features`` (lookup only), for the same feature service, customers and Redis, with the same
number of worker processes, driven by wrk (a C HTTP load generator) on loopback; every run is bounded in
time (``--seconds``) and in requests (MAX_REQUESTS per wrk thread).

Measured in one run: sequential latency (p50/p95/p99, one connection), throughput and p99 at concurrency 8
and 32, and a 100-customer batch (/predict/batch against get-online-features with 100 entities). During our
concurrency-32 run a new model version is promoted and the old one restored (the workers hot-swap it);
``errors`` counts every failed or non-200 request of our runs and must be 0.

    make services && make bench                        # all benchmarks
    .venv/bin/python -m benchmarks.serving             # this one (builds its own platform the first time)
    .venv/bin/python -m benchmarks.serving --quick     # 3-second runs, for a look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.common import bench_dir, print_table, write_result
from benchmarks.platform import bench_env, ensure_platform, registry, use_env

LUA = Path(__file__).with_name("wrk_load.lua")
MAX_REQUESTS = 400_000  # per wrk thread: the bound on any one run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(
    url: str, proc: subprocess.Popen, log: Path, timeout: float = 120, body: dict | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            r = httpx.post(url, json=body, timeout=5) if body is not None else httpx.get(url, timeout=5)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


@contextmanager
def server(argv: list[str], env: dict, ready_url: str, log: Path, body: dict | None = None):
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(ready_url, proc, log, body=body)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)


def wrk(base: str, kind: str, connections: int, seconds: float, ids: Path, batch: int = 1) -> dict:
    """One wrk run: ``seconds`` long, and at most MAX_REQUESTS requests per thread. (wrk cannot end a run
    early on a request count, so the run is bounded by time, and by a request cap far above the rates seen
    here; a run that hits the cap stops the benchmark, since its req/s would understate the server.)"""
    threads = min(2, connections)
    env = {
        **os.environ,
        "WRK_IDS": str(ids),
        "WRK_KIND": kind,
        "WRK_BATCH": str(batch),
        "WRK_MAX": str(MAX_REQUESTS),
    }
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s"]
    out = subprocess.run(
        [*argv, "-s", str(LUA), base], env=env, capture_output=True, text=True, check=True
    ).stdout
    result = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    if result["requests"] >= MAX_REQUESTS * threads:
        raise SystemExit(f"wrk hit the request cap ({MAX_REQUESTS} per thread): raise MAX_REQUESTS")
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(v for k, v in result.items() if k.startswith("errors_"))
    for q in ("p50", "p95", "p99"):
        result[f"{q}_ms"] = result[f"{q}_us"] / 1000
    return result


def _customer_ids(env: dict, path: Path, n: int = 5000) -> list[int]:
    """Customers that are in the online store (the latest feature snapshot)."""
    from core import catalog
    from core.settings import load_settings
    from resources.object_store import ObjectStore

    settings = load_settings()
    spine = ObjectStore(settings.object_store_root, endpoint=settings.s3_endpoint).read_parquet(
        catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.ENTITY_KEY, catalog.EVENT_TS]
    )
    latest = spine.filter(spine[catalog.EVENT_TS] == spine[catalog.EVENT_TS].max())
    ids = latest[catalog.ENTITY_KEY].sample(min(n, latest.height), seed=7).to_list()
    path.write_text("\n".join(map(str, ids)) + "\n")
    return ids


class HotDeploy:
    """Promotes a second model version while the load runs, then restores the original."""

    def __init__(self, env: dict):
        self.registry = registry(env)
        self.swaps: list[str] = []

    def _second_version(self, original: str) -> str:
        import lightgbm as lgb

        meta = self.registry.metadata(original)
        booster = lgb.Booster(model_str=self.registry.model_text(original))
        fewer = max(10, booster.num_trees() // 2)
        text = booster.model_to_string(num_iteration=fewer)
        version, _ = self.registry.register(
            text, {**meta, "note": f"benchmark hot-deploy: first {fewer} trees"}
        )
        return version

    def run(self, after_s: float, hold_s: float) -> threading.Thread:
        original = self.registry.production()["version"]
        second = self._second_version(original)

        def go():
            time.sleep(after_s)
            self.registry.promote(second, reason="serving benchmark: deploy under load")
            self.swaps.append(second)
            time.sleep(hold_s)
            self.registry.promote(original, reason="serving benchmark: restore")
            self.swaps.append(original)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread


def _metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="worker processes, both servers"
    )
    parser.add_argument("--seconds", type=float, default=15, help="length of each measured run")
    parser.add_argument("--quick", action="store_true", help="3-second runs, for a look")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 3
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: `apt-get install wrk` (make bench installs it)")

    env = bench_env()
    os.environ["HYBRID_BENCH_DIR"] = str(bench_dir())  # results go next to the others, not into the platform
    use_env(env)
    home = ensure_platform(env)
    work = home / "bench-serving"
    work.mkdir(parents=True, exist_ok=True)
    ids_file = work / "customer_ids.txt"
    ids = _customer_ids(env, ids_file)
    base_env = {**os.environ, **env, "HYBRID_MODEL_POLL_SECONDS": "0.5", "HYBRID_LOG_LEVEL": "warning"}
    from core.settings import FEATURE_REPO
    from resources.feature_store import REDIS_ENV, redis_connection_string

    feast_env = {**base_env, REDIS_ENV: redis_connection_string(env["HYBRID_REDIS_URL"])}
    ours_port, feast_port = _free_port(), _free_port()
    ours, feast = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{feast_port}"
    ours_cmd = [
        sys.executable, "-m", "hybrid_cli.cli", "serve", "--port", str(ours_port),
        "--workers", str(args.workers), "--log-level", "warning",
    ]  # fmt: skip
    feast_cmd = [
        str(Path(sys.executable).with_name("feast")), "-c", str(FEATURE_REPO),
        "-f", str(home / "feast" / "feature_store.yaml"), "serve", "-h", "127.0.0.1", "-p", str(feast_port),
        "--workers", str(args.workers), "--no-access-log", "--max-requests", "100000000",
    ]  # fmt: skip
    feast_probe = {"feature_service": "churn_prediction", "entities": {"customer_id": [ids[0]]}}
    results: dict[str, dict] = {}
    deploy = HotDeploy(env)
    # one server at a time, so neither competes with the other for the two cores
    with server(ours_cmd, base_env, f"{ours}/ready", work / "ours.log"):
        wrk(ours, "predict", 4, 3, ids_file)  # warm-up
        results["ours_seq"] = wrk(ours, "predict", 1, args.seconds, ids_file)
        results["ours_c8"] = wrk(ours, "predict", 8, args.seconds, ids_file)
        swaps_before = _metric(ours, "hybrid_model_swaps_total")
        thread = deploy.run(after_s=args.seconds / 4, hold_s=args.seconds / 3)
        results["ours_c32"] = wrk(ours, "predict", 32, args.seconds, ids_file)
        thread.join(timeout=30)
        time.sleep(1.5)  # let every worker pick up the restored version
        swaps = _metric(ours, "hybrid_model_swaps_total") - swaps_before
        results["ours_batch"] = wrk(ours, "predict", 1, args.seconds, ids_file, batch=100)
    with server(feast_cmd, feast_env, f"{feast}/get-online-features", work / "feast.log", body=feast_probe):
        wrk(feast, "feast", 4, 3, ids_file)
        results["feast_seq"] = wrk(feast, "feast", 1, args.seconds, ids_file)
        results["feast_c8"] = wrk(feast, "feast", 8, args.seconds, ids_file)
        results["feast_c32"] = wrk(feast, "feast", 32, args.seconds, ids_file)
        results["feast_batch"] = wrk(feast, "feast", 1, args.seconds, ids_file, batch=100)

    errors = sum(r["errors"] for k, r in results.items() if k.startswith("ours"))
    o, f = results, results
    figures = {
        "workers": args.workers,
        "predict_p50_ms": o["ours_seq"]["p50_ms"],
        "predict_p95_ms": o["ours_seq"]["p95_ms"],
        "predict_p99_ms": o["ours_seq"]["p99_ms"],
        "feast_serve_p50_ms": f["feast_seq"]["p50_ms"],
        "feast_serve_p95_ms": f["feast_seq"]["p95_ms"],
        "feast_serve_p99_ms": f["feast_seq"]["p99_ms"],
        "predict_rps_c8": o["ours_c8"]["rps"],
        "feast_serve_rps_c8": f["feast_c8"]["rps"],
        "predict_p99_ms_c8": o["ours_c8"]["p99_ms"],
        "feast_serve_p99_ms_c8": f["feast_c8"]["p99_ms"],
        "predict_rps_c32": o["ours_c32"]["rps"],
        "feast_serve_rps_c32": f["feast_c32"]["rps"],
        "predict_p99_ms_c32": o["ours_c32"]["p99_ms"],
        "feast_serve_p99_ms_c32": f["feast_c32"]["p99_ms"],
        "predict_batch100_p50_ms": o["ours_batch"]["p50_ms"],
        "predict_batch100_p99_ms": o["ours_batch"]["p99_ms"],
        "feast_serve_batch100_p50_ms": f["feast_batch"]["p50_ms"],
        "feast_serve_batch100_p99_ms": f["feast_batch"]["p99_ms"],
        "errors": errors,
        "feast_serve_errors": sum(r["errors"] for k, r in results.items() if k.startswith("feast")),
        "hot_deploys_during_c32": deploy.swaps,
        "model_swaps_seen_by_workers": swaps,
        "p99_ratio_sequential": o["ours_seq"]["p99_ms"] / f["feast_seq"]["p99_ms"],
        "rps_ratio_c32": o["ours_c32"]["rps"] / f["feast_c32"]["rps"],
        "requests": {k: r["requests"] for k, r in results.items()},
    }
    rows = []
    for label, key in [
        ("sequential", "seq"),
        ("concurrency 8", "c8"),
        ("concurrency 32 (+ hot deploy)", "c32"),
        ("batch of 100, sequential", "batch"),
    ]:
        a, b = results[f"ours_{key}"], results[f"feast_{key}"]
        rows.append([f"POST /predict  {label}", a["p50_ms"], a["p95_ms"], a["p99_ms"], a["rps"], a["errors"]])
        rows.append([f"feast serve    {label}", b["p50_ms"], b["p95_ms"], b["p99_ms"], b["rps"], b["errors"]])
    print_table(
        f"Serving, {args.workers} workers each, wrk on loopback (latency in ms)",
        ["server / load", "p50", "p95", "p99", "req/s", "errors"],
        rows,
    )
    print(
        f"  sequential p99: ours/feast = {figures['p99_ratio_sequential']:.2f} (target <= 0.5); "
        f"req/s at c32: ours/feast = {figures['rps_ratio_c32']:.2f} (target >= 2); errors {errors} (target 0); "
        f"model swaps during c32: {swaps:.0f}"
    )
    print(f"  -> {write_result('serving', figures)}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
