"""The Feast repo: entity ``customer``, one feature view per catalog view, and one feature service that both
training and serving ask for. Schemas come from ``core.catalog``; nothing is declared twice.

Importing this module builds nothing and reads no setting: :func:`build` makes the objects for a given object
store. The platform calls it with its resource's settings; the Feast CLI (``feast -c $HYBRID_HOME/feast plan``,
``apply``, ``ui``) imports the definitions file that ``hybrid feast-config`` generates next to the profile's
``feature_store.yaml`` (``resources/feature_store.py``), which calls it with that profile's values written in.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64

from core import catalog
from core.settings import object_uri

DESCRIPTIONS = {
    catalog.ACTIVITY_VIEW: "Purchase, support and account features computed on-prem next to the raw data "
    "and exported without PII.",
    catalog.ENGAGEMENT_VIEW: "Marketing engagement features computed in the cloud from email events.",
}


def build(object_store_root: str, s3_endpoint: str | None = None) -> dict:
    """All Feast objects of the repo, keyed by name, reading from the given object store."""
    customer = Entity(
        name=catalog.ENTITY,
        join_keys=[catalog.ENTITY_KEY],
        value_type=ValueType.INT64,
        description="A subscription customer, by the on-prem customer_id (no other identifier crosses).",
    )
    views = []
    for view in catalog.active_views():  # without marketing events, the on-prem view only
        key = catalog.VIEW_OFFLINE_KEY[view]
        source = FileSource(
            name=f"{view}_source",
            path=object_uri(object_store_root, key),
            timestamp_field=catalog.EVENT_TS,
            s3_endpoint_override=s3_endpoint,
        )
        views.append(
            FeatureView(
                name=view,
                entities=[customer],
                ttl=timedelta(days=catalog.FEATURE_TTL_DAYS),
                schema=[
                    Field(
                        name=f.name, dtype=Int64 if f.dtype == "int64" else Float64, description=f.description
                    )
                    for f in catalog.features_of(view)
                ],
                source=source,
                online=True,
                description=DESCRIPTIONS[view],
            )
        )
    service = FeatureService(
        name=catalog.FEATURE_SERVICE,
        features=views,
        description="Everything the churn model needs; training and serving both ask for this service.",
    )
    return {o.name: o for o in [customer, *views, service]}
