"""Metrics (Prometheus text format at GET /metrics) and structured access logs for the endpoint.

With several uvicorn workers each process keeps its own counters; ``hybrid serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder so that /metrics, whichever worker answers, reports the sum
over all workers (prometheus_client's multiprocess mode). A single process needs no folder.

Access logs are one JSON object per line on stderr (logger ``hybrid.access``): time, method, path, status,
duration_ms, request id (the client's ``x-request-id`` or a new one, echoed back), client address and the
model version that answered. Bodies and headers are never logged. An unexpected error is caught here, logged
as one JSON line with its traceback in a field (logger ``hybrid.serving``) and answered with a JSON 500;
nothing reaches uvicorn, whose plain-text "Exception in ASGI application" would break the JSON stream.

Feature freshness (``hybrid_feature_age_seconds``, ``hybrid_feature_latest_event_timestamp_seconds``) is
observed on every lookup, from the event timestamps the online store returns with the values: per feature
view, in both profiles (serving/app.py's readers).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from datetime import UTC, datetime

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
AGE_BUCKETS = tuple(h * 3600.0 for h in (1, 6, 12, 24, 48, 72, 24 * 7, 24 * 14, 24 * 30))
KNOWN_PATHS = {"/predict", "/predict/batch", "/health", "/ready", "/metrics", "/docs", "/openapi.json"}

REQUESTS = Counter(
    "hybrid_requests_total", "HTTP requests by path and status code", ["method", "path", "status"]
)
LATENCY = Histogram(
    "hybrid_request_duration_seconds", "Time to answer a request, by path", ["path"], buckets=LATENCY_BUCKETS
)
PREDICTIONS = Counter("hybrid_predictions_total", "Customers scored", ["model_version"])
MODEL = Gauge(
    "hybrid_model_info",
    "1 for the model version a worker serves (label version)",
    ["version"],
    multiprocess_mode="livemax",
)
MODEL_SWAPS = Counter("hybrid_model_swaps_total", "Times a worker swapped in a newly promoted model")
FEATURE_AGE = Histogram(
    "hybrid_feature_age_seconds",
    "Age of the served feature values (request time minus their event timestamp), by feature view",
    ["feature_view"],
    buckets=AGE_BUCKETS,
)
FEATURE_LATEST = Gauge(
    "hybrid_feature_latest_event_timestamp_seconds",
    "Newest feature event timestamp served, by feature view (Unix seconds)",
    ["feature_view"],
    multiprocess_mode="livemax",
)

access_log = logging.getLogger("hybrid.access")
error_log = logging.getLogger("hybrid.serving")
INTERNAL_ERROR = "internal error; the server log has the details"


def metrics_payload() -> tuple[bytes, str]:
    """The Prometheus exposition of this process, or of all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def set_model(version: str, previous: str | None) -> None:
    if previous:
        MODEL.labels(previous).set(0)
        MODEL_SWAPS.inc()
    MODEL.labels(version).set(1)


def observe_features(event_times: dict[str, list], now: float | None = None) -> None:
    """Feature freshness: the age of what was served, per feature view (None: no row for that entity)."""
    now = now or time.time()
    for view, stamps in event_times.items():
        newest = None
        for stamp in stamps:
            if stamp is None:
                continue
            FEATURE_AGE.labels(view).observe(max(0.0, now - stamp))
            newest = stamp if newest is None or stamp > newest else newest
        if newest is not None:
            FEATURE_LATEST.labels(view).set(newest)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra={"fields": {...}}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for the endpoint's own loggers (access and application)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    for name in ("hybrid.access", "hybrid.serving"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def uvicorn_log_config(level: str = "info") -> dict:
    """uvicorn's own loggers (start-up, shutdown, its errors) as the same JSON lines on stderr, so that the
    stream stays one JSON object per line whatever writes to it."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "serving.observability.JsonFormatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }


class ObservabilityMiddleware:
    """Pure ASGI middleware (cheaper than Starlette's BaseHTTPMiddleware): times each request, counts it
    by path and status, writes one access-log line, and turns an unexpected error into a JSON 500."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = False

        async def send_wrapper(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            error_log.exception(
                "unhandled error on %s %s",
                scope["method"],
                scope["path"],
                extra={"fields": {"request_id": request_id}},
            )
            if not started:  # otherwise uvicorn closes the connection of the half-sent response
                body = orjson.dumps({"detail": INTERNAL_ERROR})
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_wrapper({"type": "http.response.body", "body": body})
            status = 500
        finally:
            elapsed = time.perf_counter() - began
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            REQUESTS.labels(scope["method"], path, str(status)).inc()
            LATENCY.labels(path).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    "access",
                    extra={
                        "fields": {
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 3),
                            "request_id": request_id,
                            "client": f"{client[0]}:{client[1]}" if client else None,
                            "model_version": scope["state"].get("model_version"),
                        }
                    },
                )
