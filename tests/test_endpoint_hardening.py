"""The endpoint's edge over real HTTP (`hybrid serve` in a subprocess): strict ids, body size, short errors,
the OpenAPI document (schemathesis), a replaced online store, freshness metrics, the metrics folder and
unexpected errors. Each probe is one that broke the endpoint before (issue 14)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path

import httpx
import lightgbm as lgb
import numpy as np
import pytest

from core import catalog
from serving.app import INT64_MAX, MAX_BATCH, MAX_BODY_BYTES
from tests.conftest import SHORT_DAYS, SHORT_LABELS, build_platform, free_port, hybrid_env, running_server

SHORT = 1024  # bytes: the longest error body allowed (the 20 KB and 1001-id probes would echo far more)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A deployed platform of this module's own (a model in production, the online store loaded), not the
    session's: this module is then a scope of its own, on another worker than the modules that share that
    platform (tests/conftest.py). What these tests probe is the endpoint, not the model."""
    return build_platform(
        tmp_path_factory.mktemp("deployed"), customers=3000, days=SHORT_DAYS, env=SHORT_LABELS
    )


@pytest.fixture(scope="module")
def known(deployed) -> list[int]:
    offline = deployed.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)
    return offline["customer_id"].unique().sort().head(20).to_list()


@pytest.fixture(scope="module")
def base(deployed):
    with running_server(deployed.home) as url:
        yield url


def _post(base: str, path: str, raw: bytes | str, **headers) -> httpx.Response:
    return httpx.post(
        f"{base}{path}",
        content=raw.encode() if isinstance(raw, str) else raw,
        headers={"content-type": "application/json", **headers},
        timeout=30,
    )


def _assert_short_422(response: httpx.Response, field: str) -> dict:
    assert response.status_code == 422, response.text[:SHORT]
    assert len(response.content) < SHORT, len(response.content)
    body = response.json()
    assert body["errors"][0]["field"] == field, body
    assert field in body["detail"]
    assert "Traceback" not in response.text
    return body


# -- strict ids -----------------------------------------------------------------------------------------------
BAD_IDS = {
    "string": '"2"',
    "float": "2.0",
    "exponent": "1e3",
    "boolean": "true",
    "null": "null",
    "negative": "-1",
    "2**63": str(INT64_MAX + 1),
    "2**70": str(2**70),
    "-2**63-1": str(-(2**63) - 1),
}


@pytest.mark.parametrize("kind", sorted(BAD_IDS))
def test_an_id_that_is_not_an_int64_json_integer_is_422_naming_the_field_in_both_routes(base, known, kind):
    text = BAD_IDS[kind]
    one = _assert_short_422(_post(base, "/predict", f'{{"customer_id": {text}}}'), "customer_id")
    assert one["errors"][0]["problem"] == f"must be a JSON integer from 0 to {INT64_MAX}"
    batch = _assert_short_422(
        _post(base, "/predict/batch", f'{{"customer_ids": [{known[0]}, {text}]}}'), "customer_ids[1]"
    )
    assert batch["error_count"] == 1


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_nan_and_infinity_are_422_invalid_json_in_both_routes(base, known, literal):
    for path, raw in (
        ("/predict", f'{{"customer_id": {literal}}}'),
        ("/predict/batch", f'{{"customer_ids": [{known[0]}, {literal}]}}'),
    ):
        body = _assert_short_422(_post(base, path, raw), "body")
        assert body["errors"][0]["problem"].startswith("invalid JSON at character")


def test_the_largest_int64_id_is_a_plain_404_and_true_is_not_customer_1(base, known):
    r = _post(base, "/predict", f'{{"customer_id": {INT64_MAX}}}')
    assert r.status_code == 404, r.text
    assert r.json()["unknown_customer_ids"] == [INT64_MAX]
    assert _post(base, "/predict", '{"customer_id": true}').status_code == 422
    assert _post(base, "/predict", f'{{"customer_id": {known[0]}}}').status_code == 200


def test_a_422_lists_a_few_problems_with_short_inputs_never_the_whole_body(base):
    long_string = "x" * 20_000
    r = _post(base, "/predict", json.dumps({"customer_id": long_string}))
    body = _assert_short_422(r, "customer_id")
    assert len(body["errors"][0]["input"]) <= 40
    # a batch of 1000 bad ids: five problems shown, all counted
    r = _post(base, "/predict/batch", json.dumps({"customer_ids": ["1"] * MAX_BATCH}))
    body = _assert_short_422(r, "customer_ids[0]")
    assert len(body["errors"]) == 5 and body["error_count"] == MAX_BATCH
    assert "and 999 more problems" in body["detail"]
    # too many ids: the problem is named, the list is not echoed
    r = _post(base, "/predict/batch", json.dumps({"customer_ids": list(range(MAX_BATCH + 1))}))
    body = _assert_short_422(r, "customer_ids")
    assert "at most 1000" in body["errors"][0]["problem"]


def test_a_body_that_is_not_a_json_object_is_422_saying_so(base):
    r = _post(base, "/predict", '{"customer_id": 1}', **{"content-type": "text/plain"})
    body = _assert_short_422(r, "body")
    assert body["errors"][0]["problem"] == "the body must be JSON, sent with Content-Type: application/json"
    for raw in ('"x"', "[1]", "null"):
        body = _assert_short_422(_post(base, "/predict", raw), "body")
        assert body["errors"][0]["problem"] in ("must be a JSON object", "Field required"), body


# -- body size ------------------------------------------------------------------------------------------------
def _ten_mb_batch() -> bytes:
    return b'{"customer_ids": [' + b",".join([b"1"] * 5_000_000) + b"]}"


def test_a_body_over_the_limit_is_413_and_one_at_the_limit_is_served(base, known):
    ids = ",".join(str(known[0]) for _ in range(MAX_BATCH))
    at_limit = f'{{"customer_ids": [{ids}]}}'.encode()
    at_limit += b" " * (MAX_BODY_BYTES - len(at_limit))
    assert len(at_limit) == MAX_BODY_BYTES
    assert _post(base, "/predict/batch", at_limit).status_code == 200
    r = _post(base, "/predict/batch", at_limit + b" ")
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}


def test_a_10_mb_body_is_413_before_parsing_and_health_answers_meanwhile(base):
    big = _ten_mb_batch()
    outcome: dict = {}

    def send(name: str, content):
        began = time.monotonic()
        outcome[name] = (_post(base, "/predict/batch", content), time.monotonic() - began)

    def chunks():  # no Content-Length: the server counts the streamed bytes
        for at in range(0, len(big), 256 * 1024):
            yield big[at : at + 256 * 1024]

    for name, content in (("content-length", big), ("chunked", chunks())):
        sender = threading.Thread(target=send, args=(name, content))
        latencies = []
        with httpx.Client(base_url=base, timeout=10) as http:
            sender.start()
            while sender.is_alive() or len(latencies) < 3:
                began = time.monotonic()
                assert http.get("/health").status_code == 200
                latencies.append(time.monotonic() - began)
        sender.join()
        response, took = outcome[name]
        assert response.status_code == 413, (name, response.text[:SHORT])
        assert len(response.content) < 100
        assert max(latencies) < 1.0, (name, max(latencies))  # the event loop never parsed 10 MB
        assert took < 10, (name, took)


# -- the OpenAPI document and /metrics -------------------------------------------------------------------------
def test_openapi_lists_every_status_each_route_returns(base):
    doc = httpx.get(f"{base}/openapi.json").json()
    statuses = {
        (method.upper(), path): set(op["responses"])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    predict = {"200", "404", "413", "422", "500", "503"}
    assert statuses == {
        ("POST", "/predict"): predict,
        ("POST", "/predict/batch"): predict,
        ("GET", "/health"): {"200", "413", "500"},
        ("GET", "/ready"): {"200", "413", "500", "503"},
        ("GET", "/metrics"): {"200", "413", "500"},
    }
    responses = doc["paths"]["/predict"]["post"]["responses"]
    for status in ("404", "413", "422", "500", "503"):
        assert "$ref" in responses[status]["content"]["application/json"]["schema"], status
    customer_id = doc["components"]["schemas"]["PredictRequest"]["properties"]["customer_id"]
    assert (customer_id["type"], customer_id["minimum"], customer_id["maximum"]) == ("integer", 0, INT64_MAX)
    metrics = doc["paths"]["/metrics"]["get"]["responses"]
    assert list(metrics["200"]["content"]) == ["text/plain"]
    assert list(metrics["500"]["content"]) == ["application/json"]


def test_metrics_are_prometheus_text(base):
    r = httpx.get(f"{base}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "# TYPE hybrid_requests_total counter" in r.text


# schemathesis treats 2.0 as an integer, as JSON Schema does (the same number as 2); the endpoint deliberately
# refuses it (the probes above). So generated bodies write integral numbers the canonical way, as integers:
# under the schema's own rules that changes no case from valid to invalid or back.
SCHEMATHESIS_HOOKS = """
import schemathesis


def _canonical(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


@schemathesis.hook
def map_body(context, body):
    return _canonical(body)
"""


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(deployed, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "endpoint_st_hooks.py").write_text(SCHEMATHESIS_HOOKS)
    env = {**os.environ, "PYTHONPATH": str(hooks), "SCHEMATHESIS_HOOKS": "endpoint_st_hooks"}
    with running_server(deployed.home) as url:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "150",
                "--seed",
                "14",
                "--generation-deterministic",  # derandomized: the same cases every run
                "--workers",
                "1",
                "--request-timeout",
                "10",
                "--no-color",
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        statuses = httpx.get(f"{url}/metrics").text
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
    assert 'status="500"' not in statuses and 'status="503"' not in statuses
    assert 'path="/predict",status="200"' in statuses and 'path="/predict",status="422"' in statuses


# -- unexpected errors -----------------------------------------------------------------------------------------
def _copy_home(deployed, tmp_path: Path) -> Path:
    """A private copy of the module platform's home: these tests break or replace parts of it."""
    home = tmp_path / "home"
    shutil.copytree(deployed.home, home, ignore=shutil.ignore_patterns("serve-*.log"))
    return home


def _registry(home: Path):
    from resources.model_registry import ModelRegistry
    from resources.object_store import ObjectStore

    with hybrid_env(home):
        from core.settings import load_settings

        return ModelRegistry(ObjectStore(load_settings().object_store_root))


def test_an_unexpected_error_is_a_json_500_and_the_log_stays_json(deployed, known, tmp_path):
    home = _copy_home(deployed, tmp_path)
    registry = _registry(home)
    current = registry.production()["version"]
    meta = registry.metadata(current)
    # a model that asks for a feature the online store does not have: predict() fails with a KeyError
    broken, _ = registry.register(
        registry.model_text(current) + "\n# broken on purpose\n",
        {**meta, "features": [*meta["features"], "no_such_feature"]},
    )
    with running_server(home, poll_seconds=0.3) as url:
        registry.promote(broken, reason="test: an unexpected error")
        deadline = time.monotonic() + 15
        while httpx.get(f"{url}/ready").json().get("model_version") != broken:
            assert time.monotonic() < deadline, "the broken model was not picked up"
            time.sleep(0.2)
        r = httpx.post(f"{url}/predict", json={"customer_id": known[0]})
        assert r.status_code == 500
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"detail": "internal error; the server log has the details"}
        assert "x-request-id" in r.headers
        assert httpx.get(f"{url}/health").status_code == 200
    lines = [
        line for log in home.glob("serve-*.log") for line in log.read_text().splitlines() if line.strip()
    ]
    entries = [json.loads(line) for line in lines]  # every line is JSON: no plain-text traceback
    errors = [e for e in entries if e["level"] == "error"]
    assert errors and "KeyError" in errors[0]["error"] and "no_such_feature" in errors[0]["error"]
    assert not [e for e in entries if "Exception in ASGI application" in e["msg"]]


# -- a replaced or rebuilt online store ---------------------------------------------------------------------------
def _rebuild_online_store(home: Path, day) -> None:
    """What the cloud run does for a deleted online store (feast apply creates its tables in a new file, then
    the views are loaded), with the daily objects of an older ``day``: the values differ from before."""
    from core.settings import load_settings
    from feature_repo.repo import build
    from resources.feature_store import open_feature_store
    from resources.object_store import ObjectStore
    from resources.online_loader import load_view

    with hybrid_env(home):
        settings = load_settings()
        store = open_feature_store(home, "embedded")
        store.apply(list(build(settings.object_store_root).values()))
        objects = ObjectStore(settings.object_store_root)
        for view, prefix in catalog.VIEW_SOURCE_KEY.items():
            report = load_view(store, view, objects.iter_batches(catalog.day_object(prefix, day)))
            assert report.written > 0, view


def _expected(home: Path, ids: list[int]) -> list[float]:
    """Feast's get_online_features on the store there now, then Booster.predict: what /predict must say."""
    from resources.feature_store import open_feature_store

    registry = _registry(home)
    version = registry.production()["version"]
    features = registry.metadata(version)["features"]
    booster = lgb.Booster(model_str=registry.model_text(version))
    with hybrid_env(home):
        store = open_feature_store(home, "embedded")
        values = store.get_online_features(
            features=store.get_feature_service(catalog.FEATURE_SERVICE),
            entity_rows=[{catalog.ENTITY_KEY: i} for i in ids],
        ).to_dict()
    matrix = np.array([values[f] for f in features], dtype=float).T
    return [float(p) for p in booster.predict(matrix)]


def test_a_deleted_then_rebuilt_online_store_is_noticed_and_read(deployed, tmp_path):
    home = _copy_home(deployed, tmp_path)
    db = home / "feast" / "online_store.db"
    saved = tmp_path / "online_store.before.db"
    objects = deployed.object_store()
    days = sorted(
        catalog.object_day(k) for k in objects.list(catalog.ACTIVITY_EXPORT_KEY) if k.endswith(".parquet")
    )
    middle = days[len(days) // 2]
    # customers with features on that older day (and so on the newest one too)
    older = objects.read_parquet(
        catalog.day_object(catalog.ACTIVITY_EXPORT_KEY, middle), [catalog.ENTITY_KEY]
    )
    ids = older[catalog.ENTITY_KEY].head(20).to_list()
    with running_server(home) as url:
        before = [
            p["churn_probability"]
            for p in httpx.post(f"{url}/predict/batch", json={"customer_ids": ids}).json()
        ]
        assert before == _expected(home, ids)
        shutil.copy2(db, saved)

        db.unlink()  # deleted under the running server
        ready = httpx.get(f"{url}/ready")
        predict = httpx.post(f"{url}/predict", json={"customer_id": ids[0]})
        for r in (ready, predict):
            assert r.status_code == 503, r.text
            assert f"SQLite at {db}" in r.json()["detail"] and "does not exist" in r.json()["detail"]
        assert not db.exists(), "the endpoint must not create an empty store"

        _rebuild_online_store(home, middle)  # older values than before
        assert httpx.get(f"{url}/ready").status_code == 200
        after = [
            p["churn_probability"]
            for p in httpx.post(f"{url}/predict/batch", json={"customer_ids": ids}).json()
        ]
        assert after == _expected(home, ids)  # what a freshly opened store says
        assert sum(a != b for a, b in zip(after, before, strict=True)) > len(ids) // 2

        # replaced in one step (a new file renamed over it): the next request reads the new file
        shutil.copy2(saved, db.with_suffix(".new"))
        os.replace(db.with_suffix(".new"), db)
        again = [
            p["churn_probability"]
            for p in httpx.post(f"{url}/predict/batch", json={"customer_ids": ids}).json()
        ]
        assert again == before


def test_feature_freshness_is_exported_per_view_in_the_embedded_profile(deployed, base, known):
    assert httpx.post(f"{base}/predict/batch", json={"customer_ids": known}).status_code == 200
    text = httpx.get(f"{base}/metrics").text
    newest = deployed.object_store().read_parquet(catalog.ACTIVITY_EXPORT_KEY, columns=[catalog.EVENT_TS])
    expected = newest[catalog.EVENT_TS].max()
    expected = (expected if expected.tzinfo else expected.replace(tzinfo=UTC)).timestamp()
    for view in catalog.VIEW_SOURCE_KEY:
        gauge = [
            line
            for line in text.splitlines()
            if line.startswith(f'hybrid_feature_latest_event_timestamp_seconds{{feature_view="{view}"}}')
        ]
        assert gauge, view
        assert float(gauge[0].split()[-1]) == expected, (view, gauge)
        count = [
            line
            for line in text.splitlines()
            if line.startswith(f'hybrid_feature_age_seconds_count{{feature_view="{view}"}}')
        ]
        assert count and float(count[0].split()[-1]) >= len(known), view


# -- the metrics folder ------------------------------------------------------------------------------------------
def _serve(home: Path, port: int, tmp: Path, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "HYBRID_HOME": str(home), "HYBRID_PROFILE": "embedded", "TMPDIR": str(tmp)}
    with open(tmp / f"serve-{port}.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hybrid_cli.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the server did not become ready")


@pytest.mark.parametrize(
    ("sig", "workers"),
    [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)],
    ids=["term", "int", "term-2w"],
)
def test_the_metrics_folder_is_removed_when_the_server_is_stopped(deployed, tmp_path, sig, workers):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    proc = _serve(deployed.home, port, tmp, workers)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}")
        folders = list(tmp.glob("hybrid-metrics-*"))
        assert len(folders) == 1 and folders[0].is_dir()
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(tmp.glob("hybrid-metrics-*")), (tmp / f"serve-{port}.log").read_text()[-3000:]
    assert code in (0, -sig), code  # one worker ends by the signal, as before; the supervisor exits 0
