"""Shared plumbing of the benchmarks: where results go, peak memory of a child process, the printed table.

Every benchmark measures its reference in the same run on the same machine, prints a table with both side by
side, and writes its figures to ``$HYBRID_HOME/bench/<name>.json``. Benchmarks never run in the test suite.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def bench_dir() -> Path:
    from hybrid_assets.settings import load_settings

    path = Path(load_settings(apply_env_file=False).home) / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_result(name: str, figures: dict) -> Path:
    """Write ``$HYBRID_HOME/bench/<name>.json`` atomically (figures plus the machine they were measured on)."""
    path = bench_dir() / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**figures, "machine": machine()}, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [header, *[[fmt(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def run_measured(argv: list[str], env: dict | None = None, timeout: float = 900) -> dict:
    """Run a child process; return the JSON it printed last on stdout, plus its wall time.

    Each measured variant runs in its own process so that its peak RSS (the child reports ``peak_rss_mb()``)
    is its own and not the high-water mark of an earlier variant.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env={**os.environ, **(env or {})}, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}")
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    result.setdefault("wall_s", wall)
    return result


def peak_rss_mb() -> float:
    """Peak RSS of the calling process so far, in MB (Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
