"""A Feast offline store whose point-in-time join sorts and merges instead of joining and then filtering.

Feast's file offline store (``type: file``, :class:`~feast.infra.offline_stores.dask.DaskOfflineStore`) merges
every entity row with every feature row of its entity, then filters by time and TTL, sorts and drops duplicates:
time and memory grow with entity rows x feature rows per entity. :class:`AsOfOfflineStore` keeps that store for
everything else (``materialize``, ``pull_latest_from_table_or_query``, ``pull_all_from_table_or_query``, logging,
saved datasets) and replaces only ``get_historical_features``, with the same result (``docs/offline-store.md``
says exactly where it differs, and why):

1. **Scan** (per feature view): only the join keys, the timestamp and the created timestamp of the source,
   Parquet row group by row group (row groups whose timestamp or key statistics lie outside what the entity
   rows can match are not read), with each row's address (file, row). Rows outside
   ``[min(entity ts) - ttl, max(entity ts)]`` or of entities not asked for are dropped at once.
2. **As-of join** (Polars ``join_asof``, backward, ``by`` the join keys, ``tolerance`` = TTL) of the entity rows
   with these candidates, in passes of at most ``candidate_rows_per_pass`` candidates whose winners are merged:
   the memory of this step does not grow with the feature table.
3. **Gather**: the feature columns only of the row groups that hold a winning row, and only those rows.

Name it in ``feature_store.yaml``::

    offline_store:
      type: resources.asof_offline_store.AsOfOfflineStore

Feast imports this module, and finds the config class :class:`AsOfOfflineStoreConfig` next to the store.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from feast.data_format import ParquetFormat
from feast.feature_view import FeatureView
from feast.infra.offline_stores.dask import (
    DaskOfflineStore,
    DaskOfflineStoreConfig,
    DaskRetrievalJob,
    _get_entity_df_event_timestamp_range,
)
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.offline_stores.offline_utils import DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from feast.utils import _get_requested_feature_views_to_features_dict, _get_requested_on_demand_feature_views
from pydantic import StrictBool, StrictInt

logger = logging.getLogger(__name__)

STORE_TYPE = "resources.asof_offline_store.AsOfOfflineStore"

# internal column names of the join frames (never in the result)
_ETS, _EID, _FTS, _CTS, _FID, _RID = (
    "__asof_ets",
    "__asof_eid",
    "__asof_fts",
    "__asof_cts",
    "__asof_fid",
    "__asof_rid",
)


class AsOfOfflineStoreConfig(DaskOfflineStoreConfig):
    """Feast's file offline store config, plus the settings of the as-of join."""

    type: Literal["resources.asof_offline_store.AsOfOfflineStore"] = STORE_TYPE  # type: ignore[assignment]
    """Offline store type selector"""

    candidate_rows_per_pass: StrictInt = 2_000_000
    """Candidate rows (join keys, timestamps, address) held for one as-of pass; a bigger source takes more
    passes, not more memory (about 40 bytes a row, twice while sorting)."""

    drop_entity_rows_like_file_store: StrictBool = False
    """False (default): an entity row with no feature row in ``[ts - ttl, ts]`` keeps null features, as Feast's
    docs promise and its SQL offline stores do. True: reproduce Feast's file store exactly, which drops such an
    entity row from the result when its entity has feature rows in the source, but none in that window (and
    keeps it with nulls when the entity has no feature row at all). See docs/offline-store.md."""


@dataclass
class Read:
    """One read from a source: which file, row group, columns, and why (``scan`` or ``gather``)."""

    phase: str
    path: str
    row_group: int
    columns: tuple[str, ...]
    rows: int


@dataclass
class ViewStats:
    view: str
    files: int = 0
    row_groups: int = 0
    row_groups_scanned: int = 0
    row_groups_gathered: int = 0
    candidate_rows: int = 0
    passes: int = 0
    matched: int = 0
    dropped_like_file_store: int = 0
    scan_seconds: float = 0.0
    join_seconds: float = 0.0
    gather_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class JoinReport:
    """What one evaluation read and did (``AsOfRetrievalJob.last_report``)."""

    entity_rows_in: int = 0
    entity_rows_out: int = 0
    reads: list[Read] = field(default_factory=list)
    views: list[ViewStats] = field(default_factory=list)
    seconds: float = 0.0
    cluster: str | None = None  # the Dask scheduler the join ran on, or None (in-process)
    tasks: list[dict] = field(default_factory=list)  # on a cluster: per partition, the worker and its pid


class AsOfRetrievalJob(RetrievalJob):
    """Runs the as-of join when the result is asked for (``to_df``, ``to_arrow``), like Feast's lazy jobs."""

    def __init__(
        self,
        evaluate: Callable[[JoinReport], pa.Table],
        full_feature_names: bool,
        repo_path: str,
        on_demand_feature_views: list[OnDemandFeatureView],
        metadata: RetrievalMetadata | None,
    ):
        self._evaluate = evaluate
        self._full_feature_names = full_feature_names
        self._on_demand_feature_views = on_demand_feature_views
        self._metadata = metadata
        self.repo_path = repo_path
        self.last_report: JoinReport | None = None

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return self._on_demand_feature_views

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        report = JoinReport()
        table = self._evaluate(report)
        self.last_report = report
        return table

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas().reset_index(drop=True)

    # the file store's: writes to_arrow() to a SavedDatasetFileStorage (local or S3)
    persist = DaskRetrievalJob.persist

    def supports_remote_storage_export(self) -> bool:
        return False


class AsOfOfflineStore(DaskOfflineStore):
    """Feast's file offline store with a sort-and-merge ``get_historical_features``.

    Delegated to the file store unchanged: no entity_df (a time range), an entity_df that is not a pandas
    DataFrame (a SQL string is refused there, a dask DataFrame is joined there),
    ``filter_by_created_timestamp=True`` with a created timestamp column, and a source that is not Parquet.
    """

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str | None,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
        **kwargs,
    ) -> RetrievalJob:
        assert isinstance(config.offline_store, AsOfOfflineStoreConfig)
        reason = _unsupported(feature_views, entity_df, filter_by_created_timestamp)
        if reason:
            logger.info("AsOfOfflineStore: %s; Feast's file offline store joins this request", reason)
            return DaskOfflineStore.get_historical_features(
                config,
                feature_views,
                feature_refs,
                entity_df,
                registry,
                project,
                full_feature_names,
                filter_by_created_timestamp,
                **kwargs,
            )
        assert isinstance(entity_df, pd.DataFrame)
        ts_col = _entity_timestamp_column(entity_df)
        views_to_features, _ = _get_requested_feature_views_to_features_dict(
            feature_refs,
            feature_views,
            _get_requested_on_demand_feature_views(feature_refs, config.project, registry),
        )
        ts_range = _get_entity_df_event_timestamp_range(entity_df, ts_col)
        store_config: AsOfOfflineStoreConfig = config.offline_store
        repo_path = config.repo_path

        def evaluate(report: JoinReport) -> pa.Table:
            client = _active_client()
            if client is not None:
                return _historical_features_on_cluster(
                    client,
                    entity_df,
                    ts_col,
                    dict(views_to_features),
                    full_feature_names,
                    repo_path,
                    store_config,
                    report,
                )
            return _historical_features(
                entity_df,
                ts_col,
                dict(views_to_features),
                full_feature_names,
                repo_path,
                store_config,
                report,
            )

        return AsOfRetrievalJob(
            evaluate,
            full_feature_names=full_feature_names,
            repo_path=str(config.repo_path),
            on_demand_feature_views=OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry),
            metadata=RetrievalMetadata(
                features=feature_refs,
                keys=list(set(entity_df.columns) - {ts_col}),
                min_event_timestamp=ts_range[0],
                max_event_timestamp=ts_range[1],
            ),
        )


def _unsupported(
    feature_views: list[FeatureView], entity_df, filter_by_created_timestamp: bool
) -> str | None:
    """Why this request goes to Feast's file store, or None."""
    if entity_df is None:
        return "no entity_df (a time-range retrieval)"
    if not isinstance(entity_df, pd.DataFrame):
        return f"the entity_df is a {type(entity_df).__name__}, not a pandas DataFrame"
    for view in feature_views:
        source = view.batch_source
        if not isinstance(source, FileSource):
            return f"feature view {view.name} reads a {type(source).__name__}, not a FileSource"
        if not view.entity_columns:
            return f"feature view {view.name} has no entity (a join without keys)"
        fmt = source.file_format
        if fmt is not None and not isinstance(fmt, ParquetFormat):
            return f"feature view {view.name} reads {type(fmt).__name__} files, not Parquet"
        if filter_by_created_timestamp and source.created_timestamp_column:
            return f"filter_by_created_timestamp with a created timestamp column (feature view {view.name})"
    return None


def _entity_timestamp_column(entity_df: pd.DataFrame) -> str:
    """Feast's rule: ``event_timestamp``, else the entity_df's only datetime column."""
    if DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL in entity_df.columns:
        return DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL
    datetime_columns = entity_df.select_dtypes(include=["datetime", "datetimetz"]).columns
    if len(datetime_columns) == 1:
        logger.info("Using %s as the event timestamp", datetime_columns[0])
        return datetime_columns[0]
    raise ValueError(
        f"Please provide an entity_df with a column named {DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL} "
        "representing the time of events."
    )


def _utc_ns(series: pd.Series) -> pd.Series:
    """Entity timestamps as Feast's file store leaves them: tz-aware UTC (naive ones taken as UTC), in ns."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        out = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(dtype):
        out = series.dt.tz_localize("UTC")
    else:  # objects (datetimes of mixed zones, strings): Feast's own per-value rule, then to UTC
        out = pd.to_datetime(
            series.apply(
                lambda x: x if getattr(x, "tzinfo", None) is not None or isinstance(x, str) else _as_utc(x)
            ),
            utc=True,
        )
    return out.dt.as_unit("ns")


def _as_utc(value):
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value


@dataclass
class _Source:
    """A FileSource opened for reading: its filesystem and Parquet files (one, or a folder's)."""

    uri: str
    fs: pafs.FileSystem
    paths: list[str]
    endpoint: str | None
    _opened: dict[int, pq.ParquetFile] = field(default_factory=dict)

    def describe(self) -> str:
        return self.uri + (f" at {self.endpoint}" if self.endpoint else "")

    def open(self, index: int) -> pq.ParquetFile:
        """File ``index`` (its footer read once; the row groups are read on demand)."""
        if index not in self._opened:
            path = self.paths[index]
            try:
                self._opened[index] = pq.ParquetFile(self.fs.open_input_file(path), pre_buffer=True)
            except OSError as exc:
                raise OSError(
                    f"reading {path} of the feature source {self.describe()} failed: {exc}"
                ) from exc
        return self._opened[index]

    def read_row_group(
        self, index: int, row_group: int, columns: list[str], phase: str, report: JoinReport
    ) -> pa.Table:
        """Only ``columns`` of one row group of file ``index``; every read is recorded in ``report``."""
        path = self.paths[index]
        try:
            table = self.open(index).read_row_group(row_group, columns=columns)
        except (OSError, KeyError, pa.ArrowInvalid) as exc:
            raise type(exc)(
                f"reading columns {columns} of row group {row_group} of {path} (feature source "
                f"{self.describe()}) failed: {exc}"
            ) from exc
        report.reads.append(Read(phase, path, row_group, tuple(columns), table.num_rows))
        return table


def _s3_filesystem(uri: str, endpoint: str | None, credentials: dict | None) -> pafs.S3FileSystem:
    """S3 (or an S3-compatible server at ``endpoint``); credentials from the FileSource's connection, else the
    standard AWS chain (``AWS_*`` variables, profile, instance role)."""
    kwargs: dict[str, Any] = {}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if endpoint:
        scheme, _, host = endpoint.rpartition("://")
        kwargs.update(endpoint_override=host, scheme=scheme or "https", region=region or "us-east-1")
    else:
        kwargs["region"] = region or pafs.resolve_s3_region(uri.removeprefix("s3://").split("/", 1)[0])
    if credentials:
        if credentials.get("AWS_ACCESS_KEY_ID") and credentials.get("AWS_SECRET_ACCESS_KEY"):
            kwargs.update(
                access_key=credentials["AWS_ACCESS_KEY_ID"], secret_key=credentials["AWS_SECRET_ACCESS_KEY"]
            )
        if credentials.get("AWS_SESSION_TOKEN"):
            kwargs["session_token"] = credentials["AWS_SESSION_TOKEN"]
        if credentials.get("AWS_DEFAULT_REGION"):
            kwargs["region"] = credentials["AWS_DEFAULT_REGION"]
    return pafs.S3FileSystem(**kwargs)


def open_source(source: FileSource, repo_path) -> _Source:
    """The Parquet files of a FileSource: a local path or ``s3://bucket/key`` (a file, or a folder whose files
    are all read, hidden ``.``/``_`` names skipped as Arrow and dask do), relative paths against the repo."""
    uri = FileSource.get_uri_for_file_path(repo_path=repo_path, uri=source.file_options.uri)
    endpoint = source.file_options.s3_endpoint_override or None
    if uri.startswith("s3://"):
        fs: pafs.FileSystem = _s3_filesystem(uri, endpoint, source.resolve_credentials())
        path = uri.removeprefix("s3://")
    elif "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri)
        endpoint = None
    else:
        fs, path, endpoint = pafs.LocalFileSystem(), str(uri), None
    where = uri + (f" at {endpoint}" if endpoint else "")
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            selector = pafs.FileSelector(path, recursive=True)
            paths = sorted(
                i.path
                for i in fs.get_file_info(selector)
                if i.type == pafs.FileType.File
                and not any(part.startswith((".", "_")) for part in i.path[len(path) :].split("/") if part)
            )
        elif info.type == pafs.FileType.File:
            paths = [path]
        else:
            raise FileNotFoundError(f"the feature source {where} does not exist")
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise OSError(f"listing the feature source {where} failed: {exc}") from exc
    if not paths:
        raise FileNotFoundError(f"the feature source {where} holds no Parquet file")
    return _Source(uri=uri, fs=fs, paths=paths, endpoint=endpoint)


@dataclass
class _ViewPlan:
    """What one feature view contributes, in the source's own column names."""

    view: FeatureView
    keys: list[str]  # entity_df columns
    key_columns: list[str]  # source columns of those keys
    ts_column: str
    created_column: str | None
    features: list[str]  # requested, in order
    feature_columns: list[str]  # source columns of those features
    out_names: list[str]
    ttl: timedelta | None


def _plan_view(
    view: FeatureView, features: list[str], schema_names: list[str], full_feature_names: bool
) -> _ViewPlan:
    """Feast's renames (the source's field_mapping, then the projection's join_key_map), run backwards: which
    source column holds each join key, timestamp and feature the file store would select."""
    source = view.batch_source
    field_mapping = source.field_mapping or {}
    join_key_map = view.projection.join_key_map or {}
    renamed: dict[str, str] = {}
    for column in schema_names:
        name = field_mapping.get(column, column)
        name = join_key_map.get(name, name)
        if name in renamed:
            raise ValueError(
                f"feature view {view.name}: source columns {renamed[name]} and {column} both become {name!r} "
                "after the field mapping"
            )
        renamed[name] = column

    def column(name: str, what: str) -> str:
        if name not in renamed:
            raise ValueError(
                f"feature view {view.name}: its source {source.path} has no column for {what} {name!r} "
                f"(columns after the field mapping: {sorted(renamed)})"
            )
        return renamed[name]

    keys = [join_key_map.get(e.name, e.name) for e in view.entity_columns]
    ttl = view.ttl if view.ttl and view.ttl.total_seconds() != 0 else None
    name = view.projection.name_to_use()
    return _ViewPlan(
        view=view,
        keys=keys,
        key_columns=[column(k, "the join key") for k in keys],
        ts_column=column(source.timestamp_field, "the timestamp field"),
        created_column=(
            column(source.created_timestamp_column, "the created timestamp column")
            if source.created_timestamp_column
            else None
        ),
        features=list(features),
        feature_columns=[column(f, "the feature") for f in features],
        out_names=[f"{name}__{f}" if full_feature_names else f for f in features],
        ttl=ttl,
    )


def _historical_features(
    entity_df: pd.DataFrame,
    ts_col: str,
    views_to_features: dict[FeatureView, list[str]],
    full_feature_names: bool,
    repo_path,
    config: AsOfOfflineStoreConfig,
    report: JoinReport,
) -> pa.Table:
    start = time.perf_counter()
    report.entity_rows_in = len(entity_df)
    entity = entity_df.copy()
    entity[ts_col] = _utc_ns(entity[ts_col])
    entity = entity.sort_values(ts_col, kind="stable")

    sources = {view: open_source(view.batch_source, repo_path) for view in views_to_features}
    plans = []
    for view, features in views_to_features.items():
        first = sources[view].open(0)
        plans.append(_plan_view(view, features, first.schema_arrow.names, full_feature_names))
    for plan in plans:
        missing = [k for k in plan.keys if k not in entity.columns]
        if missing:
            raise ValueError(
                f"the entity_df has no column {missing} for the join keys of feature view {plan.view.name}"
            )
        clash = [n for n in plan.out_names if n in entity.columns]
        if clash:
            raise ValueError(
                f"feature view {plan.view.name}: the entity_df already has columns named {clash}; rename them "
                "or ask with full_feature_names=True"
            )
    if plans:
        # Feast's file store keeps one entity row per (join keys of the first view, timestamp): the last one
        entity = entity.drop_duplicates(plans[0].keys + [ts_col], keep="last")
    entity = entity.reset_index(drop=True)
    n = len(entity)
    # ns since the epoch (UTC) on both sides of the join: exact, and the TTL is an integer tolerance
    ets = pl.from_pandas(entity[ts_col]).dt.replace_time_zone(None).cast(pl.Datetime("ns")).cast(pl.Int64)
    ets = ets.alias(_ETS)
    eid = pl.Series(_EID, np.arange(n, dtype=np.int64))

    columns: list[tuple[str, pa.Array | pa.ChunkedArray]] = []
    drop = np.zeros(n, dtype=bool)
    for plan in plans:
        keys_frame = pl.from_pandas(entity[plan.keys])
        frame = keys_frame.rename(dict(zip(plan.keys, plan.key_columns, strict=True))).with_columns(ets, eid)
        arrays, dropped = _join_view(plan, sources[plan.view], frame, config, report)
        columns.extend(zip(plan.out_names, arrays, strict=True))
        if dropped is not None:
            drop |= dropped

    table = pa.Table.from_pandas(entity, preserve_index=False)
    for name, array in columns:
        table = table.append_column(name, array)
    if drop.any():
        table = table.filter(pa.array(~drop))
    report.entity_rows_out = table.num_rows
    report.seconds = time.perf_counter() - start
    return table


# -- on a Dask cluster ---------------------------------------------------------------------------------------
_ORDER = "__asof_order"  # an entity row's position in the request, to put the partitions back in order


def _active_client():
    """The process's default ``distributed.Client`` (a step opens one for its cluster), or None. Feast's file
    offline store follows the same convention: it runs on whatever client is open in the process."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _join_partition(
    entity: pd.DataFrame,
    ts_col: str,
    views_to_features: dict[FeatureView, list[str]],
    full_feature_names: bool,
    repo_path,
    config: AsOfOfflineStoreConfig,
) -> tuple[pa.Table, dict]:
    """One partition's as-of join, on a worker: the same code as in-process, over the partition's entities."""
    report = JoinReport()
    table = _historical_features(
        entity, ts_col, views_to_features, full_feature_names, repo_path, config, report
    )
    try:
        from distributed import get_worker

        worker = get_worker().address
    except (ImportError, ValueError):
        worker = None
    task = {"worker": worker, "pid": os.getpid(), "entity_rows": len(entity), "seconds": report.seconds}
    return table, task


def _historical_features_on_cluster(
    client,
    entity_df: pd.DataFrame,
    ts_col: str,
    views_to_features: dict[FeatureView, list[str]],
    full_feature_names: bool,
    repo_path,
    config: AsOfOfflineStoreConfig,
    report: JoinReport,
) -> pa.Table:
    """The join partitioned by entity (a hash of the first view's join keys, so duplicate entity rows meet in
    one partition), one as-of join per partition on a worker, put back in the in-process order. A worker lost
    in the middle costs its tasks a rerun elsewhere (Dask); a join that cannot finish raises, naming the
    cluster: the result is whole or there is none."""
    import uuid

    from resources.dask_cluster import ClusterError

    start = time.perf_counter()
    address = client.scheduler.address
    report.cluster = address
    report.entity_rows_in = len(entity_df)
    first = next(iter(views_to_features), None)
    keys = [first.projection.join_key_map.get(e.name, e.name) for e in first.entity_columns] if first else []
    missing = [k for k in keys if k not in entity_df.columns]
    if missing:
        raise ValueError(
            f"the entity_df has no column {missing} for the join keys of feature view {first.name}"
        )
    entity = entity_df.copy()
    entity[_ORDER] = np.arange(len(entity), dtype=np.int64)
    parts = max(2, 2 * len(client.scheduler_info()["workers"]))
    bucket = (
        pd.util.hash_pandas_object(entity[keys], index=False).to_numpy() % parts
        if keys
        else np.zeros(len(entity), dtype=np.int64)
    )
    token = uuid.uuid4().hex[:8]
    futures = [
        client.submit(
            _join_partition,
            entity[bucket == p],
            ts_col,
            views_to_features,
            full_feature_names,
            repo_path,
            config,
            key=f"asof-partition-{p}-{token}",
            pure=False,
        )
        for p in range(parts)
        if (bucket == p).any()
    ]
    try:
        results = client.gather(futures)
    except Exception as exc:  # every attempt failed, or the cluster lost its workers
        raise ClusterError(f"the training-set join on the Dask cluster at {address} failed: {exc}") from exc
    finally:
        client.cancel(futures)
    tables = [table for table, _ in results]
    report.tasks = [task for _, task in results]
    if not tables:  # no entity rows: the in-process join gives the empty result with every column
        table = _historical_features(
            entity_df, ts_col, views_to_features, full_feature_names, repo_path, config, JoinReport()
        )
    else:
        table = pa.concat_tables(tables, promote_options="default")
        table = table.sort_by([(ts_col, "ascending"), (_ORDER, "ascending")]).drop_columns([_ORDER])
    report.entity_rows_out = table.num_rows
    report.seconds = time.perf_counter() - start
    return table


def _ns(value) -> int | None:
    """A Parquet statistic of a timestamp column as ns since the epoch (naive = UTC), or None."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if ts is pd.NaT:
        return None
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).value


def _statistics(meta: pq.RowGroupMetaData, index: int | None):
    if index is None:
        return None
    stats = meta.column(index).statistics
    return stats if stats is not None and stats.has_min_max else None


def _to_utc_ns(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A timestamp column as ns since the epoch, UTC (naive values are UTC already, as Feast takes them)."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return expr.cast(pl.Datetime("ns")).cast(pl.Int64)


def _td_ns(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _outside(stats, bounds) -> bool:
    """True if a row group's min/max statistics show no value in ``bounds`` (inclusive)."""
    if stats is None or bounds is None:
        return False
    try:
        return bool(stats.max < bounds[0] or stats.min > bounds[1])
    except TypeError:  # statistics of another type than the entity key: read the row group
        return False


def _join_view(
    plan: _ViewPlan,
    source: _Source,
    entities: pl.DataFrame,
    config: AsOfOfflineStoreConfig,
    report: JoinReport,
) -> tuple[list[pa.Array | pa.ChunkedArray], np.ndarray | None]:
    """The feature columns of one view for every entity row (in entity order), and the rows Feast's file store
    would drop (only with ``drop_entity_rows_like_file_store``)."""
    start = time.perf_counter()
    stats = ViewStats(view=plan.view.name, files=len(source.paths))
    report.views.append(stats)
    n = entities.height
    keys = plan.key_columns
    created = plan.created_column is not None
    entities = entities.filter(
        pl.all_horizontal(pl.col(c).is_not_null() for c in [*keys, _ETS])
    )  # a null key or timestamp matches nothing
    ttl = _td_ns(plan.ttl) if plan.ttl is not None else None
    track_seen = config.drop_entity_rows_like_file_store
    scan_columns = list(dict.fromkeys(keys + [plan.ts_column] + ([plan.created_column] if created else [])))
    key_filter = _KeyFilter(entities.select(keys).unique())
    if entities.height:  # the feature rows any entity row can match: [min ts - ttl, max ts]
        hi = int(entities[_ETS].max())
        lo = int(entities[_ETS].min()) - ttl if ttl is not None else None

    # the best candidate so far of each entity row (by eid): timestamp, created, address; fid -1 = none yet
    best_ts = np.full(n, _NO_TS, dtype=np.int64)
    best_created = np.full(n, _NO_TS, dtype=np.int64)
    best_fid = np.full(n, -1, dtype=np.int32)
    best_rid = np.zeros(n, dtype=np.int64)
    buffer: list[pl.DataFrame] = []
    buffered = 0
    seen: list[pl.DataFrame] = []

    def join_pass() -> None:
        """As-of join of the entity rows with the buffered candidates; better matches replace the best."""
        nonlocal buffer, buffered
        if not buffer:
            return
        began = time.perf_counter()
        candidates = pl.concat(buffer, how="vertical_relaxed", rechunk=True)
        buffer, buffered = [], 0
        order = [_FTS, _CTS] if created else [_FTS]
        fts = candidates[_FTS].to_numpy()
        if created or not bool(np.all(fts[1:] >= fts[:-1])):
            # stable: among equal (timestamp, created) the later row stays last, and join_asof takes the last
            candidates = candidates.sort(order, maintain_order=True)
        window = pl.col(_ETS) >= int(fts.min())  # only the entity rows that can match a candidate
        if ttl is not None:
            window &= pl.col(_ETS) <= int(fts.max()) + ttl
        matched = (
            entities.filter(window)
            .join_asof(
                candidates.set_sorted(_FTS) if not created else candidates,
                left_on=_ETS,
                right_on=_FTS,
                by=keys,
                strategy="backward",
                tolerance=ttl,
                check_sortedness=False,
            )
            .filter(pl.col(_FID).is_not_null())
        )
        eid = matched[_EID].to_numpy()
        m_ts = matched[_FTS].to_numpy()
        m_created = matched[_CTS].fill_null(_NO_TS).to_numpy() if created else np.full(len(eid), _NO_TS)
        # later, or as late and created later or at the same time: the later pass (later rows) wins ties
        better = (m_ts > best_ts[eid]) | ((m_ts == best_ts[eid]) & (m_created >= best_created[eid]))
        eid = eid[better]
        best_ts[eid] = m_ts[better]
        best_created[eid] = m_created[better]
        best_fid[eid] = matched[_FID].to_numpy()[better]
        best_rid[eid] = matched[_RID].to_numpy()[better]
        stats.passes += 1
        stats.join_seconds += time.perf_counter() - began

    if entities.height:
        for fid in range(len(source.paths)):
            pf = source.open(fid)
            meta = pf.metadata
            names = [meta.schema.column(i).path for i in range(meta.num_columns)]
            ts_index = names.index(plan.ts_column) if plan.ts_column in names else None
            key_index = names.index(keys[0]) if key_filter.bounds and keys[0] in names else None
            offset = 0
            for rg in range(meta.num_row_groups):
                group = meta.row_group(rg)
                rows = group.num_rows
                stats.row_groups += 1
                first_row, offset = offset, offset + rows
                if _outside(_statistics(group, key_index), key_filter.bounds):
                    continue  # no entity asked for is in this row group
                in_window = True
                ts_stats = _statistics(group, ts_index)
                if ts_stats is not None:
                    low, high = _ns(ts_stats.min), _ns(ts_stats.max)
                    if low is not None and high is not None:
                        in_window = low <= hi and (lo is None or high >= lo)
                if not in_window and not track_seen:
                    continue
                columns = scan_columns if in_window else list(dict.fromkeys(keys + [plan.ts_column]))
                table = source.read_row_group(fid, rg, columns, "scan", report)
                stats.row_groups_scanned += 1
                part = pl.from_arrow(table)
                assert isinstance(part, pl.DataFrame)
                part = part.select(
                    *[pl.col(k).cast(entities.schema[k]) for k in keys],
                    _to_utc_ns(pl.col(plan.ts_column), part.schema[plan.ts_column]).alias(_FTS),
                    *(
                        [
                            _to_utc_ns(pl.col(plan.created_column), part.schema[plan.created_column]).alias(
                                _CTS
                            )
                        ]
                        if created and in_window
                        else []
                    ),
                )
                fts = part[_FTS]
                keep = key_filter.mask(part) & fts.is_not_null().to_numpy()
                if track_seen:  # entities with a timestamped row anywhere in the source
                    seen.append(part.filter(keep).select(keys).unique())
                if not in_window:
                    continue
                values = fts.fill_null(0).to_numpy()
                keep &= values <= hi
                if lo is not None:
                    keep &= values >= lo
                picked = np.flatnonzero(keep)
                if not len(picked):
                    continue
                part = part.filter(keep).with_columns(
                    pl.lit(fid, pl.Int32).alias(_FID), pl.Series(_RID, picked + first_row, dtype=pl.Int64)
                )
                buffer.append(part)
                buffered += part.height
                stats.candidate_rows += part.height
                if buffered >= config.candidate_rows_per_pass:
                    join_pass()
        join_pass()
    stats.scan_seconds = time.perf_counter() - start - stats.join_seconds

    began = time.perf_counter()
    hit = np.flatnonzero(best_fid >= 0)
    stats.matched = len(hit)
    arrays = _gather(plan, source, hit, best_fid[hit], best_rid[hit], n, stats, report)
    stats.gather_seconds = time.perf_counter() - began

    dropped = None
    if track_seen and seen:
        seen_keys = pl.concat(seen).unique()
        unmatched = entities.filter(pl.col(_EID).is_in(pl.Series(hit)).not_())
        lost = unmatched.join(seen_keys, on=keys, how="semi")[_EID].to_numpy()
        dropped = np.zeros(n, dtype=bool)
        dropped[lost] = True
        stats.dropped_like_file_store = int(dropped.sum())
    stats.seconds = time.perf_counter() - start
    return arrays, dropped


_NO_TS = np.iinfo(np.int64).min  # below every timestamp: "no match yet", and a null created timestamp
_LOOKUP_MAX = 1 << 26  # entries of a key lookup table (bytes): for integer keys spanning at most this range


class _KeyFilter:
    """Which rows of a scanned row group belong to an entity asked for. One integer key: a lookup table over
    the keys' range (no hashing per row group); otherwise a semi-join."""

    def __init__(self, wanted: pl.DataFrame):
        self.wanted = wanted
        self.bounds = None
        self.table = None
        if wanted.width == 1 and wanted.height and wanted.dtypes[0].is_integer():
            values = wanted.to_series()
            low, high = int(values.min()), int(values.max())
            self.bounds = (low, high)
            if high - low < _LOOKUP_MAX:
                self.table = np.zeros(high - low + 1, dtype=bool)
                self.table[values.to_numpy() - low] = True

    def mask(self, part: pl.DataFrame) -> np.ndarray:
        keys = self.wanted.columns
        if self.table is not None:
            column = part[keys[0]]
            low, high = self.bounds
            values = column.fill_null(low).to_numpy()
            inside = (values >= low) & (values <= high) & column.is_not_null().to_numpy()
            out = np.zeros(len(values), dtype=bool)
            out[inside] = self.table[values[inside] - low]
            return out
        marked = part.with_row_index("__asof_row").join(self.wanted, on=keys, how="semi")
        out = np.zeros(part.height, dtype=bool)
        out[marked["__asof_row"].to_numpy()] = True
        return out


def _gather(
    plan: _ViewPlan,
    source: _Source,
    eids: np.ndarray,
    fids: np.ndarray,
    rids: np.ndarray,
    n: int,
    stats: ViewStats,
    report: JoinReport,
) -> list[pa.Array | pa.ChunkedArray]:
    """The winning rows' feature columns (row ``rids`` of file ``fids`` for entity row ``eids``), read only from
    the row groups that hold them, as full columns in entity order (null where nothing matched)."""
    pieces: list[pa.Table] = []
    owners: list[np.ndarray] = []
    for fid in np.unique(fids):
        mine = fids == fid
        order = np.argsort(rids[mine], kind="stable")
        file_rids, file_eids = rids[mine][order], eids[mine][order]
        meta = source.open(int(fid)).metadata
        starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        groups = np.searchsorted(starts, file_rids, side="right") - 1
        for rg in np.unique(groups):
            here = groups == rg
            table = source.read_row_group(int(fid), int(rg), plan.feature_columns, "gather", report)
            stats.row_groups_gathered += 1
            pieces.append(table.take(pa.array(file_rids[here] - starts[rg])))
            owners.append(file_eids[here])
    if not pieces:
        schema = source.open(0).schema_arrow
        return [pa.nulls(n, schema.field(c).type) for c in plan.feature_columns]
    gathered = pa.concat_tables(pieces, promote_options="permissive")
    position = np.full(n, -1, dtype=np.int64)
    position[np.concatenate(owners)] = np.arange(gathered.num_rows)
    take = pa.array(position, mask=position < 0)
    return [gathered.column(c).take(take).combine_chunks() for c in plan.feature_columns]
