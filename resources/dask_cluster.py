"""The scale-out engine: a Dask distributed cluster per site, or none (in-process, the default).

Each code location gets its own ``DaskResource``: the on-prem location's from ``HYBRID_ONPREM_DASK_SCHEDULER``
(its workers see raw rows, so they must be on-prem), the cloud location's from ``HYBRID_DASK_SCHEDULER``. A step
that can use a cluster opens a client for the length of its work; Dagster stays the orchestrator with its own
executor (dagster-dask's executor keys tasks by job and step only, so two runs of one job would collide on a
shared cluster, dagster#21418). docs/scale-out.md says how to run real clusters.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

CONNECT_TIMEOUT_S = 20


class ClusterError(RuntimeError):
    """The Dask cluster could not be reached, or lost every worker; the message names the scheduler."""


@contextmanager
def cluster_client(scheduler: str | None, timeout: float = CONNECT_TIMEOUT_S) -> Iterator[object | None]:
    """A ``distributed.Client`` connected to ``scheduler`` and set as the process's default client (the
    platform's Feast offline store runs its join on it), or None without a scheduler. The client is closed
    afterwards."""
    if not scheduler:
        yield None
        return
    from distributed import Client

    try:
        client = Client(scheduler, timeout=timeout, set_as_default=True)
    except OSError as exc:
        raise ClusterError(f"the Dask cluster at {scheduler} is not reachable: {exc}") from None
    try:
        if not client.scheduler_info().get("workers"):
            client.wait_for_workers(1, timeout=timeout)
        yield client
    except TimeoutError as exc:
        raise ClusterError(f"the Dask cluster at {scheduler} has no workers: {exc}") from None
    finally:
        client.close()


def worker_addresses(client) -> list[str]:
    return sorted(client.scheduler_info()["workers"])


class DaskResource(dg.ConfigurableResource):
    """The site's Dask scheduler (``tcp://host:port``), or none: the step then runs in its own process."""

    scheduler: str | None = Field(default=None, description="Dask scheduler address; unset: in-process")

    def describe(self) -> str:
        return f"the Dask cluster at {self.scheduler}" if self.scheduler else "in-process"

    @contextmanager
    def client(self) -> Iterator[object | None]:
        with cluster_client(self.scheduler) as client:
            yield client
