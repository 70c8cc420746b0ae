"""The deployed churn endpoint: features from the Feast online store at request time, the production model
from the registry, hot-swapped when a new version is promoted (no restart).

Endpoints: POST /predict, POST /predict/batch, GET /health (liveness), GET /ready (model loaded and online
store reachable), GET /metrics (Prometheus). Clients never see a traceback: errors are JSON with a message.

The edge (README "Endpoint API"): a body over ``MAX_BODY_BYTES`` is refused with 413 before it is parsed;
bodies are parsed with orjson (no NaN/Infinity) and ids are strict JSON integers in ``[0, INT64_MAX]``;
a 422 names each field and its problem and echoes at most a short prefix of the offending value.

The hot path (docs/serving.md): the feature service and the model are loaded once; on Redis the features of
both views come back in one HMGET per customer built from Feast's own key layout (resources/feast_redis.py)
and are decoded from Feast's Value protos; anywhere else Feast's ``get_online_features`` is used. Either way
the answer equals ``get_online_features`` + ``Booster.predict`` to the last bit (tests/test_serving.py,
tests/test_hybrid.py). Each lookup first checks (a few ``stat`` calls) that the online store file and the
Feast registry are the ones it opened; when they were replaced or rebuilt it reopens them, and while the
store is missing it answers 503 naming it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from core import catalog
from core.settings import Settings, load_settings
from resources.feast_redis import (
    EntityKeyEncoder,
    decode_value,
    feature_field,
    timestamp_field,
    timestamp_seconds,
    versioned_view_name,
)
from resources.feature_store import (
    describe_online_store,
    open_feature_store,
    redis_address,
    write_feature_store_yaml,
)
from resources.model_registry import ModelRegistry
from resources.object_store import ObjectStore
from serving import observability as obs

log = logging.getLogger("hybrid.serving")

MAX_BATCH = 1000  # ids per /predict/batch call
INT64_MAX = 2**63 - 1  # customer ids are Feast Int64 entity keys
# Largest request body: a 1000-id batch of 19-digit ids is about 21 KB, pretty-printed about 30 KB.
MAX_BODY_BYTES = 64 * 1024
MAX_ERRORS_SHOWN = 5  # a 422 lists at most this many problems (and counts the rest)
INPUT_PREFIX_CHARS = 40  # ... and echoes at most this much of each offending value
REDIS_TIMEOUT_S = 0.5  # connect and read timeout of the serving Redis client (no retries)
REOPEN_RETRY_S = 0.5  # after a failed reopen of the online store, wait this long before the next try


CustomerId = Annotated[
    int,
    Field(strict=True, ge=0, le=INT64_MAX, description="On-prem customer id: a JSON integer, 0 to 2**63-1"),
]


class PredictRequest(BaseModel):
    customer_id: CustomerId


class PredictBatchRequest(BaseModel):
    customer_ids: list[CustomerId] = Field(min_length=1, max_length=MAX_BATCH)


class Prediction(BaseModel):
    customer_id: int
    churn_probability: float
    model_version: str
    features: dict[str, float | int | None]


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    model_version: str


class ErrorBody(BaseModel):
    detail: str


class UnknownCustomersBody(ErrorBody):
    unknown_customer_ids: list[int] = Field(description="the unknown ids of the request (at most 100)")


class FieldError(BaseModel):
    field: str = Field(description='where in the body: "customer_id", "customer_ids[3]" or "body"')
    problem: str
    input: str | None = Field(
        None, description=f"the start of the offending value (at most {INPUT_PREFIX_CHARS} characters)"
    )


class ValidationErrorBody(ErrorBody):
    errors: list[FieldError] = Field(description=f"the first {MAX_ERRORS_SHOWN} problems")
    error_count: int = Field(description="how many problems the body has in all")


_ALWAYS = {
    413: {"model": ErrorBody, "description": f"The request body is larger than {MAX_BODY_BYTES} bytes"},
    500: {"model": ErrorBody, "description": "Unexpected error; the server log has the details"},
}
_STORE_DOWN = {
    503: {
        "model": ErrorBody,
        "description": "No model is deployed yet, or the online feature store is missing or unreachable",
    }
}
PREDICT_RESPONSES = {
    404: {"model": UnknownCustomersBody, "description": "A customer has no features in the online store"},
    422: {"model": ValidationErrorBody, "description": "The body is not valid JSON or not a valid request"},
    **_STORE_DOWN,
    **_ALWAYS,
}


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


def serving_redis_client(redis_url: str | None):
    """The endpoint's own Redis client: 0.5 s connect and read timeouts and no retries, so that a Redis that
    went away (or hangs) turns into a 503 within a second instead of the 6-10 s a client with Feast's
    defaults spends in its retry loop. The pipeline-loading client of resources/ keeps its longer timeouts."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        redis_url or os.environ.get("HYBRID_REDIS_URL", "redis://localhost:6379"),
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


class RedisFeatureReader:
    """The churn_prediction service's features straight from Feast's Redis layout: one HMGET per customer
    for every feature of both views (Feast's get_online_features sends one per view and builds a response
    object around it). Keys and fields are Feast's (serialized entity key + project, murmur3 field names);
    values are decoded from Feast's Value protos, so they are the values get_online_features returns."""

    def __init__(self, store, service, client):
        config = store.config
        self.client = client
        self.fields: list[bytes] = []
        self.names: list[str] = []  # feature name per field; None-like "" for the timestamp fields
        self.ts_index: dict[str, int] = {}
        join_keys = set()
        for projection in service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            join_keys.update(c.name for c in view.entity_columns)
            name = versioned_view_name(view, config)
            self.ts_index[projection.name] = len(self.fields)
            self.fields.append(timestamp_field(name))
            self.names.append("")
            for feature in projection.features:
                self.fields.append(feature_field(name, feature.name))
                self.names.append(feature.name)
        if len(join_keys) != 1:
            raise ValueError(f"the fast reader needs one join key, the service has {sorted(join_keys)}")
        self.join_key = join_keys.pop()
        self.key_of = EntityKeyEncoder.for_config(self.join_key, config).key

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
                    values[name].append(decode_value(raw))
            for view, at in self.ts_index.items():
                stamps[view].append(timestamp_seconds(row[at]))
        return values, stamps

    def close(self) -> None:
        self.client.close()


class FeastSdkReader:
    """Any other online store (SQLite in the embedded profile): Feast's get_online_features, with the event
    timestamps of one feature per view for the freshness metrics (Feast gives 0 for an entity it lacks)."""

    def __init__(self, store, service):
        from feast.online_response import TIMESTAMP_POSTFIX

        self.store, self.service = store, service
        self.ts_keys = {
            p.name: p.features[0].name + TIMESTAMP_POSTFIX
            for p in service.feature_view_projections
            if p.features
        }

    def fetch(self, ids: list[int]) -> tuple[dict[str, list], dict[str, list]]:
        values = self.store.get_online_features(
            features=self.service, entity_rows=[{catalog.ENTITY_KEY: i} for i in ids]
        ).to_dict(include_event_timestamps=True)
        stamps = {view: [float(s) if s else None for s in values[key]] for view, key in self.ts_keys.items()}
        return values, stamps

    def close(self) -> None:
        """Close the SQLite connection now (it holds a deleted file open until closed)."""
        try:
            conn = getattr(self.store.provider.online_store, "_conn", None)
            if conn is not None:
                conn.close()
        except Exception as exc:  # only a resource leak until garbage collection
            log.debug("closing the previous online store: %s", exc)


def _file_identity(path: Path, content: bool = True) -> tuple | None:
    """Which file is at ``path`` now (device and inode), and with ``content`` its mtime and size too;
    None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size) if content else (st.st_dev, st.st_ino)


@dataclass
class _OpenStore:
    identity: tuple
    store: object
    service: object
    reader: RedisFeatureReader | FeastSdkReader


class FeatureLookup:
    """Online lookups with the feature service fetched once (7x faster than per call), on the online store
    and Feast registry that are there now.

    Before each lookup a few ``stat`` calls (microseconds) compare the files it opened with the ones in
    ``HYBRID_HOME/feast``: the SQLite online store (device and inode: a deleted and rebuilt, or atomically
    replaced, store is another file; writes in place are seen by SQLite itself), the Feast registry and
    ``feature_store.yaml`` (inode, mtime and size: every online load records its interval in the registry).
    When one changed, the feature store is opened again (and a first lookup made) before the request is
    answered; while the online store file is missing, or the reopen fails because the store is half built,
    lookups raise ServiceUnavailable naming the store, so /ready and /predict answer 503 until it is back.
    In Redis the data is read live; a new registry or yaml opens a new Feast store and a new Redis client.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.where = describe_online_store(settings.home, settings.profile, settings.redis_url)
        self.tcp = redis_address(settings.redis_url) if settings.profile == "hybrid" else None
        self.fast = settings.profile == "hybrid" and os.environ.get("HYBRID_SERVING_READER", "fast") == "fast"
        feast_dir = Path(settings.home) / "feast"
        self.yaml_path = feast_dir / "feature_store.yaml"
        self.registry_path = feast_dir / "registry.db"
        self.db_path = feast_dir / "online_store.db" if settings.profile != "hybrid" else None
        self.current: _OpenStore | None = None
        self.opens = 0
        self.last_error: str | None = None
        self._failed: tuple | None = None  # the identity a reopen failed on, and when to try it again
        self._retry_at = 0.0
        try:
            self._open_store()
        except ServiceUnavailable as exc:
            log.warning("%s", exc)

    def _identity(self) -> tuple:
        online = _file_identity(self.db_path, content=False) if self.db_path else "redis"
        return online, _file_identity(self.registry_path), _file_identity(self.yaml_path)

    def _unavailable(self, problem: str) -> ServiceUnavailable:
        return ServiceUnavailable(f"online feature store ({self.where}) unavailable: {problem}")

    def _open_store(self) -> _OpenStore:
        """The open store if it is still the one on disk, otherwise a newly opened one."""
        identity = self._identity()
        current = self.current
        if current is not None and current.identity == identity:
            return current
        if identity[0] is None:
            self._drop("the file does not exist")
            raise self._unavailable(
                "the file does not exist (materialize online_features, e.g. `hybrid demo`, to rebuild it)"
            )
        if identity[1] is None:
            self._drop(f"{self.registry_path} does not exist")
            raise self._unavailable(f"the Feast registry {self.registry_path} does not exist")
        if self._failed == identity and time.monotonic() < self._retry_at:
            if current is not None and current.identity[0] == identity[0]:
                return current  # only the registry changed and it cannot be read yet: same data
            raise self._unavailable(self.last_error or "reopening failed")
        try:
            # written first (a no-op when unchanged) so that opening does not change what is compared
            write_feature_store_yaml(self.settings.home, self.settings.profile, self.settings.redis_url)
            identity = self._identity()
            store = open_feature_store(self.settings.home, self.settings.profile, self.settings.redis_url)
            service = store.get_feature_service(catalog.FEATURE_SERVICE)
            reader = (
                RedisFeatureReader(store, service, serving_redis_client(self.settings.redis_url))
                if self.fast
                else FeastSdkReader(store, service)
            )
            reader.fetch([0])  # connects (SQLite: to the file identified above, or a newer one) and checks
        except Exception as exc:
            self._failed, self._retry_at = identity, time.monotonic() + REOPEN_RETRY_S
            self.last_error = f"opening it failed: {exc}"
            if current is not None and current.identity[0] == identity[0]:
                log.warning("the Feast registry changed but could not be read (%s); kept the open store", exc)
                return current
            self._drop(self.last_error)
            raise self._unavailable(self.last_error) from exc
        self._failed = None
        self.current = _OpenStore(identity, store, service, reader)
        self.opens += 1
        if current is not None:
            current.reader.close()
            log.info("the online store or the Feast registry changed: reopened %s", self.where)
        return self.current

    def _drop(self, why: str) -> None:
        if self.current is not None:
            log.warning("stopped reading %s: %s", self.where, why)
            self.current.reader.close()
            self.current = None

    def _reachable(self) -> bool:
        """A cheap TCP probe, so that while the store is down requests fail fast."""
        if self.tcp is None:
            return True
        try:
            socket.create_connection(self.tcp, timeout=REDIS_TIMEOUT_S).close()
            return True
        except OSError:
            return False

    def fetch(self, ids: list[int]) -> dict[str, list]:
        if self.last_error and self.tcp is not None and not self._reachable():
            raise self._unavailable(self.last_error)
        opened = self._open_store()
        try:
            values, stamps = opened.reader.fetch(ids)
        except Exception as exc:
            self.last_error = str(exc)
            raise self._unavailable(str(exc)) from exc
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


# -- the edge: body size, strict JSON, short validation errors ----------------------------------------------
class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, f"request body larger than {MAX_BODY_BYTES} bytes")


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes before anything parses it: at once when Content-Length says so
    (the rest of the body is discarded by the server as it arrives), otherwise as soon as the streamed
    (chunked) body passes the limit. Nothing but the size is looked at, so the event loop stays free."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await self._refuse(send)
                    return
                break
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge()
            return message

        async def watching_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = orjson.dumps({"detail": BodyTooLarge().detail})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _StrictJsonRequest(Request):
    async def json(self):
        """orjson: RFC 8259 JSON only (NaN, Infinity, 1e400 are errors). Its error is a json.JSONDecodeError,
        which FastAPI turns into a 422."""
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Routes whose JSON bodies are parsed by orjson instead of the standard library."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict


_ID_ERRORS = {"int_type", "int_parsing", "int_from_float", "greater_than_equal", "less_than_equal"}
ID_PROBLEM = f"must be a JSON integer from 0 to {INT64_MAX}"


def _field_name(loc: tuple) -> str:
    name = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _preview(value) -> str | None:
    """At most INPUT_PREFIX_CHARS characters of a value, as JSON where it can be."""
    if value is None:
        return None
    try:
        text = orjson.dumps(value, default=repr).decode()
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= INPUT_PREFIX_CHARS else text[: INPUT_PREFIX_CHARS - 3] + "..."


def describe_validation_errors(exc: RequestValidationError) -> dict:
    """FastAPI's 422 echoes every offending input whole; this names each field and its problem and keeps at
    most a short prefix of the value, for the first few problems only."""
    errors = exc.errors()
    shown = []
    for error in errors[:MAX_ERRORS_SHOWN]:
        loc, kind = tuple(error.get("loc", ())), error.get("type", "")
        if kind == "json_invalid":
            pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
            reason = (error.get("ctx") or {}).get("error") or "malformed"
            document = exc.body if isinstance(exc.body, str) else ""
            shown.append(
                {
                    "field": "body",
                    "problem": f"invalid JSON at character {pos}: {reason}",
                    "input": document[pos : pos + INPUT_PREFIX_CHARS] or None,  # the text from there
                }
            )
            continue
        is_id = bool(loc) and (loc[-1] == "customer_id" or (len(loc) > 2 and loc[-2] == "customer_ids"))
        problem = ID_PROBLEM if is_id and kind in _ID_ERRORS else str(error.get("msg", kind))
        value = error.get("input")
        if isinstance(value, bytes | bytearray):  # not sent as JSON: FastAPI hands over the raw bytes
            problem = "the body must be JSON, sent with Content-Type: application/json"
            value = bytes(value[:INPUT_PREFIX_CHARS]).decode("utf-8", "replace")
        elif kind in ("model_attributes_type", "model_type", "dict_type"):
            problem = "must be a JSON object"
        if kind == "missing":
            value = None  # the input of a missing field is the whole enclosing object
        shown.append({"field": _field_name(loc), "problem": problem, "input": _preview(value)})
    detail = f"invalid request: {shown[0]['field']}: {shown[0]['problem']}" if shown else "invalid request"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''}: see errors)"
    return {"detail": detail, "errors": shown, "error_count": len(errors)}


def create_app(settings: Settings | None = None, poll_seconds: float | None = None) -> FastAPI:
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        obs.configure_logging(os.environ.get("HYBRID_LOG_LEVEL", "info"))
        cfg = settings or load_settings()
        interval = poll_seconds or cfg.model_poll_seconds  # validated with the other settings
        holder = ModelHolder(
            ModelRegistry(ObjectStore(cfg.object_store_root, endpoint=cfg.s3_endpoint)), interval
        )
        holder.refresh()
        holder.start()
        state["holder"] = holder
        state["lookup"] = FeatureLookup(cfg)  # never raises: an unavailable store is retried per request
        yield
        holder.stop()

    app = FastAPI(title="Churn prediction", version="1.0", lifespan=lifespan)
    app.router.route_class = StrictJsonRoute
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES)
    app.add_middleware(obs.ObservabilityMiddleware)  # outermost: counts and logs 413s and 500s too

    def model() -> LoadedModel:
        current = state["holder"].current
        if current is None:
            raise ServiceUnavailable(state["holder"].last_error or "no model loaded")
        return current

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return _json_status(422, describe_validation_errors(exc))

    @app.exception_handler(UnknownCustomers)
    async def _unknown(request: Request, exc: UnknownCustomers):
        what = f"customer {exc.ids[0]}" if len(exc.ids) == 1 else f"customers {exc.ids[:20]}"
        return _json_status(
            404,
            {
                "detail": f"{what} not found in the online feature store",
                "unknown_customer_ids": exc.ids[:100],
            },
        )

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(request: Request, exc: ServiceUnavailable):
        return _json_status(503, {"detail": str(exc)})

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):  # ObservabilityMiddleware catches these first
        return _json_status(500, {"detail": obs.INTERNAL_ERROR})

    @app.get("/health", response_model=Health, responses=_ALWAYS)
    async def health():
        return {"status": "ok"}

    @app.get("/ready", response_model=Ready, responses={**_STORE_DOWN, **_ALWAYS})
    async def ready():
        current = model()
        state["lookup"].fetch([0])  # a round trip to the online store it reads now
        return {"status": "ready", "model_version": current.version}

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **{  # errors are JSON here too (the route's own media type is text/plain)
                status: {
                    "description": spec["description"],
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                }
                for status, spec in _ALWAYS.items()
            },
        },
    )
    async def metrics():
        payload, content_type = obs.metrics_payload()
        return Response(payload, media_type=content_type)

    # Handlers return orjson bytes directly (no response-model re-validation on the hot path); the
    # response_model still documents the shape in /docs. The handlers are async and call Redis directly:
    # a lookup is ~0.1 ms, cheaper than a hop to the thread pool; throughput comes from worker processes.
    @app.post("/predict", response_model=Prediction, responses=PREDICT_RESPONSES)
    async def predict_one(body: PredictRequest, request: Request):
        current = model()
        request.scope["state"]["model_version"] = current.version
        return _json(predict(current, state["lookup"], [body.customer_id])[0])

    @app.post("/predict/batch", response_model=list[Prediction], responses=PREDICT_RESPONSES)
    async def predict_batch(body: PredictBatchRequest, request: Request):
        current = model()
        request.scope["state"]["model_version"] = current.version
        return _json(predict(current, state["lookup"], body.customer_ids))

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = _exact_integer_bounds(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi
    return app


def _exact_integer_bounds(node):
    """FastAPI's OpenAPI model stores ``minimum``/``maximum`` as floats, and float(2**63 - 1) is 2**63: the
    document would allow an id the endpoint rejects. Integer bounds are put back as integers."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                bound = node.get(key)
                if isinstance(bound, float):
                    node[key] = INT64_MAX if bound == float(INT64_MAX) else int(bound)
        for value in node.values():
            _exact_integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_integer_bounds(value)
    return node


def _json_status(status: int, content) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")
