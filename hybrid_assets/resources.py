"""Resources per code location, built from the active profile when definitions load (no connection is
opened here). The cloud location gets no warehouse resource: the residency boundary is in the wiring."""

import dagster as dg

from core.settings import Settings, load_settings
from hybrid_assets.quality import LabelPolicy, QualityPolicy
from resources.dask_cluster import DaskResource
from resources.feature_store import FeatureStoreResource
from resources.model_registry import ModelRegistryResource
from resources.object_store import ObjectStoreResource
from resources.warehouse import WarehouseResource


def _object_store(settings: Settings) -> ObjectStoreResource:
    return ObjectStoreResource(root=settings.object_store_root, endpoint=settings.s3_endpoint)


def _policy(settings: Settings) -> QualityPolicy:
    return QualityPolicy(
        max_invalid_share=settings.max_invalid_share,
        auc_floor=settings.auc_floor,
        auc_tolerance=settings.auc_tolerance,
    )


def _labels(settings: Settings) -> LabelPolicy:
    return LabelPolicy(
        horizon_days=settings.label_horizon_days,
        active_days=settings.active_days,
        every_days=settings.snapshot_every_days,
    )


def _warehouse(settings: Settings) -> WarehouseResource:
    sources = str(settings.sources_file)
    if settings.profile == "hybrid":  # the DSN holds a password: Dagster shows the variable's name only
        return WarehouseResource(dsn=dg.EnvVar("HYBRID_ONPREM_DSN"), sources_file=sources)
    return WarehouseResource(duckdb_path=str(settings.warehouse_path), sources_file=sources)


def onprem_resources(settings: Settings | None = None) -> dict:
    settings = settings or load_settings()
    return {
        "warehouse": _warehouse(settings),
        "object_store": _object_store(settings),
        "quality_policy": _policy(settings),
        "label_policy": _labels(settings),
        # raw rows go to these workers: the on-prem cluster only, never the cloud's
        "dask": DaskResource(scheduler=settings.onprem_dask_scheduler),
    }


def cloud_resources(settings: Settings | None = None) -> dict:
    settings = settings or load_settings()
    store = _object_store(settings)
    return {
        "object_store": store,
        "feature_store": FeatureStoreResource(
            home=str(settings.home),
            profile=settings.profile,
            redis_url=dg.EnvVar("HYBRID_REDIS_URL") if settings.profile == "hybrid" else None,
            s3_endpoint=settings.s3_endpoint,
            object_store_root=settings.object_store_root,
        ),
        "model_registry": ModelRegistryResource(object_store=store),
        "quality_policy": _policy(settings),
        "label_policy": _labels(settings),
        "dask": DaskResource(scheduler=settings.dask_scheduler),
    }


# What a step process needs before it starts: Dagster's executor, the location's definitions (Polars and DuckDB
# come with them) and the heavy libraries its steps import lazily (GX takes ~5 s to import, Feast ~4 s). A
# forkserver imports them once per run and forks every step from it; spawned steps would each import them again
# (4-5 s per step, most of a step's time).
_STEP_PRELOAD = {
    "onprem": ("great_expectations",),
    "cloud": ("great_expectations", "feast", "lightgbm"),
}


def executor_for(location: str) -> dg.ExecutorDefinition:
    """Runs launched from the UI, sensors and backfills execute their steps in parallel processes (two at a
    time: the machines we target have few cores), forked from a forkserver that has imported the location's
    definitions and libraries once for the run. Nothing preloaded opens a connection or starts a thread (the
    definitions read no environment and connect to nothing on import), so every fork starts clean. In the
    embedded profile those processes take turns on the DuckDB file, which admits one writer process at a time
    (the warehouse client waits for the lock)."""
    preload = [
        "dagster._core.executor.multiprocess",  # first, as Dagster does itself
        f"hybrid_assets.{location}.definitions",
        *_STEP_PRELOAD[location],
    ]
    return dg.multiprocess_executor.configured(
        {"max_concurrent": 2, "start_method": {"forkserver": {"preload_modules": preload}}}
    )
