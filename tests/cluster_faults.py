"""Faults injected into a test's Dask workers. Workers import this module by name (the local clusters put the
repository on their PYTHONPATH), so it holds only what a worker needs."""

import os

from distributed.diagnostics.plugin import WorkerPlugin


class DieOnceWhileJoining(WorkerPlugin):
    """The first worker that starts executing a task of the training-set join dies on the spot (as a killed
    process does), once per ``marker`` file; the file holds the pid of the worker that died."""

    name = "die-once-while-joining"

    def __init__(self, marker: str, prefix: str = "asof-partition"):
        self.marker, self.prefix = marker, prefix

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and str(key).startswith(self.prefix):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)
