"""The on-prem features of a range of snapshot days, from the catalog: in the step's own process, or one task per
chunk of days on the on-prem Dask cluster (HYBRID_ONPREM_DASK_SCHEDULER). No Dagster here.

Every snapshot day is computed on its own (``catalog.compute_features`` filters and aggregates each day apart,
with exact DECIMAL sums), so a day gives the same bits alone, inside a range, or on any worker: the export
objects of a backfill on the cluster are byte-identical to the in-process run. The rows go to on-prem workers
only; the cloud's cluster is another setting.
"""

from __future__ import annotations

import os
import uuid

import polars as pl

from core import catalog


def read_sources(wh, last) -> dict[str, pl.DataFrame]:
    """The accepted rows the features of the snapshots up to ``last`` read: what had happened and arrived
    before it, in a fixed order, so a rerun reads the same rows the same way."""
    from resources.warehouse import PLATFORM_SCHEMA

    return {
        "transactions": wh.query(
            # amount stays DECIMAL: its sums are exact, so a day computed alone or inside a range of days (a
            # different row layout) gives the same bits
            f"select customer_id, amount, category, channel, event_ts, "
            f"ingested_at from {PLATFORM_SCHEMA}.transactions where event_ts < ? and ingested_at < ? "
            f"order by customer_id, event_ts, transaction_id",
            [last, last],
        ),
        "support_tickets": wh.query(
            f"select customer_id, opened_ts, severity, resolved_ts from {PLATFORM_SCHEMA}.support_tickets "
            f"where opened_ts < ? order by customer_id, opened_ts, ticket_id",
            [last],
        ),
    }


def read_people(wh, sources) -> pl.DataFrame:
    """Who gets features (customer_id, signup_date, plan): the accepted customers; without a customers table
    (the source mapping leaves it out), every customer with an accepted purchase, from the day the first one
    arrived (a snapshot sees a customer once a purchase of theirs is known) and without a plan."""
    from resources.warehouse import PLATFORM_SCHEMA

    if sources["customers"].has():
        return wh.query(f"select customer_id, signup_date, plan from {PLATFORM_SCHEMA}.customers")
    return wh.query(
        f"select customer_id, cast(min(ingested_at) as date) as signup_date, cast(null as varchar) as plan "
        f"from {PLATFORM_SCHEMA}.transactions group by customer_id order by customer_id"
    )


def compute_days(
    spine: pl.DataFrame,
    sources: dict[str, pl.DataFrame],
    people: pl.DataFrame,
    names: list[str] | None = None,
) -> pl.DataFrame:
    """The activity view's features (this deployment's, or those ``names``) for every (customer, as_of) of
    ``spine``."""
    names = catalog.feature_names(catalog.ACTIVITY_VIEW) if names is None else names
    return catalog.compute_features([catalog.BY_NAME[n] for n in names], spine, sources, people)


def _compute_chunk(
    spine: pl.DataFrame, sources: dict[str, pl.DataFrame], people: pl.DataFrame, names: list[str]
) -> tuple[pl.DataFrame, dict]:
    """One task on a worker: the features ``names`` of the chunk's days (named by the step: a worker's own
    settings may point at another source mapping)."""
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = None
    days = spine["as_of"].n_unique()
    return compute_days(spine, sources, people, names), {"worker": worker, "pid": os.getpid(), "days": days}


def compute_on_cluster(
    client, spine: pl.DataFrame, sources: dict[str, pl.DataFrame], people: pl.DataFrame
) -> tuple[pl.DataFrame, list[dict]]:
    """The same features, as tasks of contiguous days on the cluster's workers (the source rows are sent to
    each worker once), put back in day order. A worker lost in the middle costs its tasks a rerun elsewhere; a
    computation that cannot finish raises, naming the cluster: the result is whole or there is none."""
    from resources.dask_cluster import ClusterError

    snapshots = spine["as_of"].unique().sort().to_list()
    if not snapshots:
        return compute_days(spine, sources, people), []
    workers = len(client.scheduler_info()["workers"]) or 1
    n = min(len(snapshots), 2 * workers)
    size = -(-len(snapshots) // n)
    chunks = [snapshots[i : i + size] for i in range(0, len(snapshots), size)]
    address = client.scheduler.address
    names = catalog.feature_names(catalog.ACTIVITY_VIEW)  # this deployment's, resolved here
    token = uuid.uuid4().hex[:8]
    try:
        shared_sources = client.scatter(sources, broadcast=True)
        shared_people = client.scatter(people, broadcast=True)
        futures = [
            client.submit(
                _compute_chunk,
                spine.filter(pl.col("as_of").is_in(chunk)),
                shared_sources,
                shared_people,
                names,
                key=f"features-{chunk[0]:%Y%m%d}-{chunk[-1]:%Y%m%d}-{token}",
                pure=False,
            )
            for chunk in chunks
        ]
        results = client.gather(futures)
    except Exception as exc:
        raise ClusterError(f"computing the features on the Dask cluster at {address} failed: {exc}") from exc
    return pl.concat([frame for frame, _ in results]), [task for _, task in results]
