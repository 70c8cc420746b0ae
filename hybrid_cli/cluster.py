"""Local Dask clusters to try the scale-out path and to test it: one per site, each a scheduler and two
workers as separate processes on loopback (real TCP), with their files under $HYBRID_HOME/cluster/<site>/.

`hybrid cluster up` starts them and writes $HYBRID_HOME/cluster.env with ``HYBRID_ONPREM_DASK_SCHEDULER``
(the on-prem location's cluster) and ``HYBRID_DASK_SCHEDULER`` (the cloud location's); the settings read that
file like services.env, so the next `hybrid demo` uses them. `hybrid cluster down` stops them and removes the
file. Two clusters, not one, because each site has its own: raw rows go to on-prem workers only. On real
clusters you skip this and set the two variables yourself (docs/scale-out.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SITES = {"onprem": "HYBRID_ONPREM_DASK_SCHEDULER", "cloud": "HYBRID_DASK_SCHEDULER"}
HOST = "127.0.0.1"
CLUSTER_ENV = "cluster.env"


def _say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


def site_dir(home: Path, site: str) -> Path:
    return Path(home) / "cluster" / site


def _spawn(args: list[str], log: Path, env: dict) -> int:
    from core.settings import REPO_ROOT

    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,  # its own process group: `down` stops it with its children
        )
    return proc.pid


def start_cluster(folder: Path, workers: int = 2, env: dict | None = None, timeout: float = 90) -> str:
    """A scheduler and ``workers`` worker processes (one thread each) on loopback; returns the scheduler's
    address once every worker has joined. The processes' pids are kept in ``folder/pids.json``."""
    from core.settings import REPO_ROOT

    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    env = {
        # a loaded 2-core machine stalls a worker's or the scheduler's event loop for 10-20 s (seen here while
        # the whole suite runs); Dask's 30 s comm timeouts left too little room. The user's own values win.
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "90s",
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP": "90s",
        **os.environ,
        **(env or {}),
        # workers import the platform's modules (the offline store, the feature catalog) by name
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "DASK_DISTRIBUTED__WORKER__DAEMON": "False",  # LightGBM's dask training starts processes of its own
    }
    pids = [
        _spawn(
            [
                "distributed.cli.dask_scheduler",
                "--host",
                HOST,
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            folder / "scheduler.log",
            env,
        )
    ]
    (folder / "pids.json").write_text(json.dumps(pids))
    deadline = time.monotonic() + timeout
    while not scheduler_file.exists():
        if time.monotonic() > deadline:
            stop_cluster(folder)
            raise RuntimeError(f"the Dask scheduler did not start: see {folder / 'scheduler.log'}")
        time.sleep(0.2)
    for n in range(workers):
        pids.append(
            _spawn(
                [
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--name",
                    f"{folder.name}-worker-{n + 1}",
                    "--host",
                    HOST,
                    "--no-dashboard",
                    "--local-directory",
                    str(folder / f"worker-{n + 1}"),
                ],
                folder / f"worker-{n + 1}.log",
                env,
            )
        )
        (folder / "pids.json").write_text(json.dumps(pids))
    address = json.loads(scheduler_file.read_text())["address"]
    from distributed import Client

    with Client(address, timeout=timeout) as client:
        client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
    return address


def stop_cluster(folder: Path) -> None:
    """Stop the processes ``start_cluster`` started in ``folder`` (workers first, then the scheduler)."""
    pid_file = folder / "pids.json"
    if not pid_file.exists():
        return
    for pid in reversed(json.loads(pid_file.read_text())):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    pid_file.unlink(missing_ok=True)
    (folder / "scheduler.json").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Is the process group of ``pid`` still running? A child of this process that exited is reaped here
    (a zombie would look alive)."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap the group's leader if it is our child and has exited
    except ChildProcessError:  # started by another `hybrid cluster up`: not ours to reap
        pass
    try:  # any process left in the group (a nanny's worker outlives it for a moment)
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def up(home: Path, workers: int = 2) -> dict[str, str]:
    """Start one local cluster per site (stopping any earlier ones of this home) and write cluster.env."""
    home = Path(home)
    down(home, quiet=True)
    addresses = {}
    for site, variable in SITES.items():
        addresses[variable] = start_cluster(site_dir(home, site), workers)
        _say(f"{site} cluster: scheduler {addresses[variable]}, {workers} workers ({variable})")
    lines = ["# written by `hybrid cluster up`; removed by `hybrid cluster down`"]
    lines += [f"{k}={v}" for k, v in addresses.items()]
    (home / CLUSTER_ENV).write_text("\n".join(lines) + "\n")
    _say(f"settings in {home / CLUSTER_ENV}: the next runs use the clusters")
    return addresses


def down(home: Path, quiet: bool = False) -> None:
    home = Path(home)
    for site in SITES:
        stop_cluster(site_dir(home, site))
    (home / CLUSTER_ENV).unlink(missing_ok=True)
    if not quiet:
        _say("clusters stopped; runs are in-process again")
