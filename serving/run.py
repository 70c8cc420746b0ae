"""`hybrid serve`: the prediction endpoint under uvicorn (uvloop, httptools), with a metrics folder that is
removed on every exit.

prometheus_client's multiprocess mode needs a folder (``PROMETHEUS_MULTIPROC_DIR``) where every worker writes
its counters; /metrics sums them. ``serve`` makes a fresh ``hybrid-metrics-*`` folder in the system temp
directory per start and removes it however the server stops: a normal return, an error, Ctrl-C or SIGTERM.

Why SIGTERM needs care: with one worker, uvicorn catches SIGTERM/SIGINT, shuts down gracefully, puts the
previous handlers back and raises the signal again so that the process ends "by the signal". With Python's
default handler that kills the process on the spot, and a ``finally`` around ``uvicorn.run`` never runs. So
``serve`` installs its own handlers first: uvicorn's re-raised signal (or one that arrives before uvicorn
took over) becomes an exception that unwinds to the cleanup; afterwards the process still ends by that
signal, as before. Only SIGKILL leaves a folder behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
METRICS_PREFIX = "hybrid-metrics-"


class Stopped(Exception):
    """A stop signal arrived while uvicorn was not handling it (before start-up or after its shutdown)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


def _raise_stopped(signum, frame):
    raise Stopped(signum)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, log_level: str = "info") -> int:
    """Run the endpoint until it is stopped; returns 0 after a normal shutdown. Stopped by SIGTERM or SIGINT,
    the process ends by that signal once the metrics folder is gone."""
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in STOP_SIGNALS}
    metrics_dir = tempfile.mkdtemp(prefix=METRICS_PREFIX)
    # set before any worker imports prometheus_client (workers inherit the environment)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    stopped_by: int | None = None
    try:
        import uvicorn

        from serving.observability import uvicorn_log_config

        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            log_config=uvicorn_log_config(log_level),
            access_log=False,  # the app writes structured access logs itself (serving/observability.py)
            loop="uvloop",
            http="httptools",
        )
    except Stopped as stop:
        stopped_by = stop.signum
    except KeyboardInterrupt:
        stopped_by = signal.SIGINT
    finally:
        for sig in STOP_SIGNALS:  # a second signal must not interrupt the cleanup
            signal.signal(sig, signal.SIG_IGN)
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == metrics_dir:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by is not None:
        signal.signal(stopped_by, signal.SIG_DFL)
        signal.raise_signal(stopped_by)  # end as the signal would have ended us
    return 0
