"""The deployed churn endpoint: features from the Feast online store at request time, the production model
from the registry, hot-swapped when a new version is promoted (no restart).

Endpoints: POST /predict, POST /predict/batch, GET /health (liveness), GET /ready (model loaded and online
store reachable), GET /metrics (Prometheus). Clients never see a traceback: errors are JSON with a message.

The hot path (docs/serving.md): the feature service and the model are loaded once; on Redis the features of
both views come back in one HMGET per customer built from Feast's own key layout (resources/online_loader.py)
and are decoded from Feast's Value protos; anywhere else Feast's ``get_online_features`` is used. Either way
the answer equals ``get_online_features`` + ``Booster.predict`` to the last bit (tests/test_serving.py,
tests/test_hybrid.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from feast.protos.feast.types.Value_pb2 import Value
from pydantic import BaseModel, Field

from hybrid_assets import catalog
from hybrid_assets.settings import Settings, load_settings
from resources.feature_store import describe_online_store, open_feature_store, redis_address
from resources.model_registry import ModelRegistry
from resources.object_store import ObjectStore
from resources.online_loader import EntityKeyEncoder, _timestamp_nanos
from serving import observability as obs

log = logging.getLogger("hybrid.serving")
MAX_BATCH = 1000


class PredictRequest(BaseModel):
    customer_id: int = Field(ge=0, description="On-prem customer id")


class PredictBatchRequest(BaseModel):
    customer_ids: list[Annotated[int, Field(ge=0)]] = Field(min_length=1, max_length=MAX_BATCH)


class Prediction(BaseModel):
    customer_id: int
    churn_probability: float
    model_version: str
    features: dict[str, float | int | None]


class ServiceUnavailable(RuntimeError):
    pass


class UnknownCustomers(LookupError):
    def __init__(self, ids: list[int]):
        super().__init__(ids)
        self.ids = ids


@dataclass(frozen=True)
class LoadedModel:
    version: str
    booster: object
    features: list[str]


class ModelHolder:
    """Follows the registry's production pointer; a background thread swaps in new versions."""

    def __init__(self, registry: ModelRegistry, poll_seconds: float):
        self.registry = registry
        self.poll_seconds = poll_seconds
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> None:
        import lightgbm as lgb

        try:
            pointer = self.registry.production()
            if pointer is None:
                self.last_error = "no model has been deployed yet (materialize churn_model_deployment)"
                return
            if self.current is None or self.current.version != pointer["version"]:
                meta = self.registry.metadata(pointer["version"])
                booster = lgb.Booster(model_str=self.registry.model_text(pointer["version"]))
                previous = self.current.version if self.current else None
                self.current = LoadedModel(pointer["version"], booster, list(meta["features"]))
                obs.set_model(pointer["version"], previous)
                log.info("serving model %s", pointer["version"])
            self.last_error = None
        except Exception as exc:  # keep serving the loaded model; /ready reports it only if none is loaded
            self.last_error = f"model registry: {exc}"
            log.warning("model refresh failed: %s", exc)

    def start(self) -> None:
        def loop():
            while not self._stop.wait(self.poll_seconds):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="model-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


class RedisFeatureReader:
    """The churn_prediction service's features straight from Feast's Redis layout: one HMGET per customer
    for every feature of both views (Feast's get_online_features sends one per view and builds a response
    object around it). Keys and fields are Feast's (serialized entity key + project, murmur3 field names);
    values are decoded from Feast's Value protos, so they are the values get_online_features returns."""

    def __init__(self, store, service):
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import RedisOnlineStore, _versioned_fv_name

        config = store.config
        self.client = RedisOnlineStore()._get_client(config.online_store)
        self.fields: list[bytes] = []
        self.names: list[str] = []  # feature name per field; None-like "" for the timestamp fields
        self.ts_index: dict[str, int] = {}
        join_keys = set()
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            join_keys.update(c.name for c in view.entity_columns)
            name = _versioned_fv_name(view, config)
            self.ts_index[projection.name] = len(self.fields)
            self.fields.append(f"_ts:{name}".encode())
            self.names.append("")
            for feature in projection.features:
                self.fields.append(_mmh3(f"{name}:{feature.name}"))
                self.names.append(feature.name)
        if len(join_keys) != 1:
            raise ValueError(f"the fast reader needs one join key, the service has {sorted(join_keys)}")
        self.join_key = join_keys.pop()
        encoder = EntityKeyEncoder(self.join_key, config.project, config.entity_key_serialization_version)
        self.key_of = encoder._one

    def fetch(self, ids: list[int]) -> tuple[dict[str, list], dict[str, list]]:
        if len(ids) == 1:
            rows = [self.client.hmget(self.key_of(ids[0]), self.fields)]
        else:
            pipe = self.client.pipeline(transaction=False)
            for i in ids:
                pipe.hmget(self.key_of(i), self.fields)
            rows = pipe.execute()
        values: dict[str, list] = {self.join_key: list(ids)}
        values.update({n: [] for n in self.names if n})
        stamps: dict[str, list] = {view: [] for view in self.ts_index}
        for row in rows:
            for name, raw in zip(self.names, row, strict=True):
                if name:
                    values[name].append(_decode_value(raw))
            for view, at in self.ts_index.items():
                stamps[view].append(_decode_seconds(row[at]))
        return values, stamps


def _decode_value(raw: bytes | None):
    """A Feast Value proto to the Python value get_online_features(...).to_dict() gives (None when unset)."""
    if not raw:
        return None
    value = Value.FromString(raw)
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)


def _decode_seconds(raw: bytes | None) -> float | None:
    return _timestamp_nanos(raw) / 1e9 if raw else None


class FeastSdkReader:
    """Any other online store (SQLite in the embedded profile): Feast's get_online_features."""

    def __init__(self, store, service):
        self.store, self.service = store, service

    def fetch(self, ids: list[int]) -> tuple[dict[str, list], dict[str, list]]:
        values = self.store.get_online_features(
            features=self.service, entity_rows=[{catalog.ENTITY_KEY: i} for i in ids]
        ).to_dict()
        return values, {}


class FeatureLookup:
    """Online lookups with the feature service fetched once (7x faster than per call)."""

    def __init__(self, settings: Settings):
        self.where = describe_online_store(settings.home, settings.profile, settings.redis_url)
        self.tcp = redis_address(settings.redis_url) if settings.profile == "hybrid" else None
        self.store = open_feature_store(settings.home, settings.profile, settings.redis_url)
        self.service = self.store.get_feature_service(catalog.FEATURE_SERVICE)
        fast = settings.profile == "hybrid" and os.environ.get("HYBRID_SERVING_READER", "fast") == "fast"
        self.reader = (
            RedisFeatureReader(self.store, self.service) if fast else FeastSdkReader(self.store, self.service)
        )
        self.last_error: str | None = None

    def _reachable(self) -> bool:
        """A cheap TCP probe, so that while the store is down requests fail fast instead of each waiting
        out the client's retries."""
        if self.tcp is None:
            return True
        try:
            socket.create_connection(self.tcp, timeout=0.5).close()
            return True
        except OSError:
            return False

    def fetch(self, ids: list[int]) -> dict[str, list]:
        if self.last_error and not self._reachable():
            raise ServiceUnavailable(f"online feature store ({self.where}) unavailable: {self.last_error}")
        try:
            values, stamps = self.reader.fetch(ids)
        except Exception as exc:
            self.last_error = str(exc)
            raise ServiceUnavailable(f"online feature store ({self.where}) unavailable: {exc}") from exc
        self.last_error = None
        if stamps:
            obs.observe_features(stamps)
        return values


def predict(model: LoadedModel, lookup: FeatureLookup, ids: list[int]) -> list[dict]:
    values = lookup.fetch(ids)
    columns = [values[f] for f in model.features]
    unknown = [i for n, i in enumerate(ids) if all(col[n] is None for col in columns)]
    if unknown:
        raise UnknownCustomers(unknown)
    matrix = (
        np.array(columns, dtype=float).T if len(ids) > 1 else np.array([[c[0] for c in columns]], dtype=float)
    )
    # one OpenMP thread: several workers each spinning a thread pool on the same cores would fight
    proba = model.booster.predict(matrix, num_threads=1)
    obs.PREDICTIONS.labels(model.version).inc(len(ids))
    return [
        {
            "customer_id": i,
            "churn_probability": float(p),
            "model_version": model.version,
            "features": {f: col[n] for f, col in zip(model.features, columns, strict=True)},
        }
        for n, (i, p) in enumerate(zip(ids, proba, strict=True))
    ]


def _json(content) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


def create_app(settings: Settings | None = None, poll_seconds: float | None = None) -> FastAPI:
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        obs.configure_logging(os.environ.get("HYBRID_LOG_LEVEL", "info"))
        cfg = settings or load_settings()
        interval = poll_seconds or float(os.environ.get("HYBRID_MODEL_POLL_SECONDS", "2"))
        holder = ModelHolder(
            ModelRegistry(ObjectStore(cfg.object_store_root, endpoint=cfg.s3_endpoint)), interval
        )
        holder.refresh()
        holder.start()
        state["holder"] = holder
        state["settings"] = cfg
        try:
            state["lookup"] = FeatureLookup(cfg)
        except Exception as exc:
            state["lookup_error"] = f"feature store not ready: {exc}"
            log.warning(state["lookup_error"])
        yield
        holder.stop()

    app = FastAPI(title="Churn prediction", version="1.0", lifespan=lifespan)
    app.add_middleware(obs.ObservabilityMiddleware)

    def lookup() -> FeatureLookup:
        if "lookup" not in state:
            try:
                state["lookup"] = FeatureLookup(state["settings"])
            except Exception as exc:
                raise ServiceUnavailable(f"feature store not ready: {exc}") from exc
        return state["lookup"]

    def model() -> LoadedModel:
        current = state["holder"].current
        if current is None:
            raise ServiceUnavailable(state["holder"].last_error or "no model loaded")
        return current

    @app.exception_handler(UnknownCustomers)
    async def _unknown(request: Request, exc: UnknownCustomers):
        what = f"customer {exc.ids[0]}" if len(exc.ids) == 1 else f"customers {exc.ids[:20]}"
        return JSONResponse(
            status_code=404,
            content={
                "detail": f"{what} not found in the online feature store",
                "unknown_customer_ids": exc.ids[:100],
            },
        )

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable):
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(
            status_code=500, content={"detail": "internal error; the server log has the details"}
        )

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        current = model()
        lookup().fetch([0])  # a round trip to the online store
        return {"status": "ready", "model_version": current.version}

    @app.get("/metrics")
    async def metrics():
        payload, content_type = obs.metrics_payload()
        return Response(payload, media_type=content_type)

    # Handlers return orjson bytes directly (no response-model re-validation on the hot path); the
    # response_model still documents the shape in /docs. The handlers are async and call Redis directly:
    # a lookup is ~0.1 ms, cheaper than a hop to the thread pool; throughput comes from worker processes.
    @app.post("/predict", response_model=Prediction)
    async def predict_one(body: PredictRequest, request: Request):
        current = model()
        request.scope["state"]["model_version"] = current.version
        return _json(predict(current, lookup(), [body.customer_id])[0])

    @app.post("/predict/batch", response_model=list[Prediction])
    async def predict_batch(body: PredictBatchRequest, request: Request):
        current = model()
        request.scope["state"]["model_version"] = current.version
        return _json(predict(current, lookup(), body.customer_ids))

    return app
