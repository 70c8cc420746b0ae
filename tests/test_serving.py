"""The endpoint over real HTTP (uvicorn in a subprocess): answers, errors, consistency, hot reload."""

import time

import httpx
import lightgbm as lgb
import polars as pl

from core import catalog
from hybrid_assets.cloud.defs.feature_store import latest_offline_features
from resources.object_store import ObjectStoreResource
from tests.conftest import running_server


def test_endpoint_over_http(platform):
    offline = platform.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)
    known = offline["customer_id"].unique().sort().head(5).to_list()
    with running_server(platform.home) as base:
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/ready").json()
        assert ready["model_version"] == platform.registry().production()["version"]

        r = httpx.post(f"{base}/predict", json={"customer_id": known[0]})
        assert r.status_code == 200
        body = r.json()
        assert body["customer_id"] == known[0]
        assert 0.0 <= body["churn_probability"] <= 1.0
        assert body["model_version"] == ready["model_version"]
        assert set(body["features"]) == set(catalog.feature_names())

        batch = httpx.post(f"{base}/predict/batch", json={"customer_ids": known[::-1]})
        assert batch.status_code == 200
        assert [p["customer_id"] for p in batch.json()] == known[::-1]
        assert batch.json()[-1]["churn_probability"] == body["churn_probability"]

        missing = httpx.post(f"{base}/predict", json={"customer_id": 987654321})
        assert missing.status_code == 404
        assert "987654321" in missing.json()["detail"]
        assert (
            httpx.post(f"{base}/predict/batch", json={"customer_ids": [known[0], 987654321]}).status_code
            == 404
        )

        for bad in ({"customer_id": "abc"}, {}, {"customer": 1}, {"customer_id": -1}):
            r = httpx.post(f"{base}/predict", json=bad)
            assert r.status_code == 422, bad
            assert "Traceback" not in r.text
        r = httpx.post(f"{base}/predict", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert httpx.post(f"{base}/predict/batch", json={"customer_ids": []}).status_code == 422
        assert httpx.post(f"{base}/predict/batch", json={"customer_ids": [1, -5]}).status_code == 422


def test_served_features_equal_latest_offline_features_and_plain_prediction(platform):
    """Online/offline consistency, and the endpoint's probability equals Booster.predict on those features."""
    offline = latest_offline_features(ObjectStoreResource(root=platform.settings.object_store_root))
    sample = offline.sample(25, seed=3)
    registry = platform.registry()
    version = registry.production()["version"]
    booster = lgb.Booster(model_str=registry.model_text(version))
    features = registry.metadata(version)["features"]
    with running_server(platform.home) as base:
        answers = httpx.post(
            f"{base}/predict/batch", json={"customer_ids": sample["customer_id"].to_list()}
        ).json()
    expected = booster.predict(sample.select(features).cast(pl.Float64).to_numpy())
    for row, answer, proba in zip(sample.iter_rows(named=True), answers, expected, strict=True):
        for name in catalog.feature_names():
            assert answer["features"][name] == row[name], (row["customer_id"], name)
        assert answer["churn_probability"] == float(proba)


def test_new_deployment_is_picked_up_without_restart(platform):
    registry = platform.registry()
    current = registry.production()
    customer = int(platform.object_store().read_parquet(catalog.LABELS_EXPORT_KEY)["customer_id"][0])
    with running_server(platform.home, poll_seconds=0.3) as base:
        assert (
            httpx.post(f"{base}/predict", json={"customer_id": customer}).json()["model_version"]
            == current["version"]
        )
        # a different model: the same trees with a note appended, registered and promoted as a new version
        text = registry.model_text(current["version"]) + "\n# hot-reload test\n"
        version, is_new = registry.register(text, registry.metadata(current["version"]))
        assert is_new
        registry.promote(version, reason="test")
        try:
            deadline = time.monotonic() + 15
            seen = None
            while time.monotonic() < deadline:
                seen = httpx.post(f"{base}/predict", json={"customer_id": customer}).json()["model_version"]
                if seen == version:
                    break
                time.sleep(0.2)
            assert seen == version
        finally:
            registry.promote(current["version"], reason="restore after test")
