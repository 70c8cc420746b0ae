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
    """``$HYBRID_HOME/bench`` (``HYBRID_BENCH_DIR`` wins: a benchmark that switches HYBRID_HOME to a platform
    of its own keeps writing its results next to the others)."""
    from core.settings import load_settings

    override = os.environ.get("HYBRID_BENCH_DIR")
    path = Path(override) if override else Path(load_settings(apply_env_file=False).home) / "bench"
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
    """Peak RSS of the calling process so far, in MB.

    On Linux this is ``VmHWM`` of ``/proc/self/status``: the high-water mark of this process's own memory.
    ``ru_maxrss`` is not: exec records the replaced address space's peak into it, and subprocess spawns
    with vfork, so a child's ``ru_maxrss`` starts at its *parent's* peak RSS.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def reset_peak_rss() -> bool:
    """Restart :func:`peak_rss_mb` from the current RSS (Linux ``/proc/self/clear_refs``), e.g. after loading
    the input so that the peak is the measured step's own. False where that is not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def system_cpu_s() -> float:
    """CPU seconds all processes of the machine have used since boot (Linux ``/proc/stat``; 0 elsewhere).

    The difference over a measured step, minus the step's own ``time.process_time()``, is what other work
    took from the machine meanwhile: on a shared machine, the figure that says how far to trust wall times.
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_for_idle(max_wait_s: float, busy_cpus: float = 0.25, sample_s: float = 5.0) -> float:
    """Wait up to ``max_wait_s`` until other processes use at most ``busy_cpus`` CPUs over ``sample_s``;
    return the last sample (CPUs busy). Call it from a process that is idle itself."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before = system_cpu_s()
        time.sleep(sample_s)
        busy = (system_cpu_s() - before) / sample_s
        if busy <= busy_cpus or time.monotonic() + sample_s > deadline:
            return busy
