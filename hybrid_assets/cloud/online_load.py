"""The incremental online load, without Dagster: which daily objects the online store still needs (a manifest
of their checksums at online/manifest.json), when to reload everything, and the newest feature rows that the
online store must hold."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import polars as pl

from core import catalog
from core.days import as_of

ONLINE_MANIFEST_KEY = "online/manifest.json"  # which daily objects (by checksum) the online store holds


@contextmanager
def naming_the_store(doing: str, online_store: str) -> Iterator[None]:
    """Any failure inside names the online store: "Connection refused" alone does not say which service."""
    try:
        yield
    except Exception as exc:
        raise RuntimeError(f"{doing} the online store ({online_store}) failed: {exc}") from exc


def newest_feature_rows(store) -> pl.DataFrame:
    """Every active feature view's rows of the newest day they all have. Every signed-up customer has a row on every
    day, so these are each customer's newest values: what the online store must hold and what is served."""
    prefixes = [catalog.VIEW_SOURCE_KEY[view] for view in catalog.active_views()]
    days = [{catalog.object_day(k) for k in store.list(prefix)} for prefix in prefixes]
    common = set.intersection(*days)
    if not common:
        raise FileNotFoundError("no day with objects of every feature view in the object store yet")
    newest = max(common)
    frames = [store.read_parquet(catalog.day_object(p, newest)) for p in prefixes]
    out = frames[0]
    for frame in frames[1:]:
        out = out.join(frame, on=[catalog.ENTITY_KEY, catalog.EVENT_TS], how="inner")
    return out


def read_manifest(objects) -> dict:
    try:
        return json.loads(objects.get_bytes(ONLINE_MANIFEST_KEY))
    except FileNotFoundError:
        return {}


def write_manifest(objects, state: dict, current: dict[str, str]) -> None:
    objects.put_bytes(ONLINE_MANIFEST_KEY, json.dumps({**state, "objects": current}, indent=1).encode())


def state_changed(previous: dict, state: dict) -> bool:
    """Did the online store or the Feast repo change since the last load? Then everything is reloaded."""
    return {k: previous.get(k) for k in state} != state


def changed_objects(objects, manifest: dict, full: bool) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Per feature view, the daily source objects to load (new or changed since the last load, or all of
    them), and the checksums of every current object."""
    current: dict[str, str] = {}
    todo: dict[str, dict[str, str]] = {}
    for view in catalog.active_views():
        sums = objects.checksums(catalog.VIEW_SOURCE_KEY[view])
        current.update(sums)
        todo[view] = {k: c for k, c in sorted(sums.items()) if full or manifest.get(k) != c}
    return todo, current


def online_lost_rows(store, objects, manifest: dict) -> bool:
    """Does the online store miss customers of the newest day it was loaded with? (Redis restarted without
    its data, say.) Then an incremental load would leave it empty: reload everything instead."""
    keys = sorted(k for k in manifest.get("objects", {}) if k.startswith(catalog.ACTIVITY_EXPORT_KEY))
    if not keys:
        return True
    try:
        ids = objects.read_parquet(keys[-1], columns=[catalog.ENTITY_KEY])[catalog.ENTITY_KEY].head(20)
    except FileNotFoundError:
        return True
    feature = catalog.feature_names(catalog.ACTIVITY_VIEW)[0]
    values = store.get_online_features(
        features=[f"{catalog.ACTIVITY_VIEW}:{feature}"],
        entity_rows=[{catalog.ENTITY_KEY: int(i)} for i in ids],
    ).to_dict()[feature]
    return any(v is None for v in values)


def load_objects(store, objects, todo: dict[str, dict[str, str]]) -> dict:
    """Load each view's objects into the online store, newest day first (each customer's newest row is sent
    once, older days' rows are dropped on the way), and record the loaded interval in the Feast registry, as
    materialize does. Returns each view's load report."""
    from resources.online_loader import load_view

    reports = {}
    for view, keys in todo.items():
        batches = (batch for key in sorted(keys, reverse=True) for batch in objects.iter_batches(key))
        reports[view] = load_view(store, view, batches, newest_first=True)
        if keys:  # the Feast registry (and UI) know which interval is online
            days = [catalog.object_day(k) for k in keys]
            start, end = as_of(min(days)), as_of(max(days))
            store.registry.apply_materialization(store.get_feature_view(view), store.project, start, end)
    return reports
