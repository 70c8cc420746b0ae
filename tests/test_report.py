"""The model report (hybrid_assets/cloud/report.py): plots and card as pure functions, then what the materialized
platform shows in Dagster and keeps in the model registry."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from hybrid_assets.cloud import report, training

PLOT_FILES = (report.ROC_FILE, report.CALIBRATION_FILE, report.IMPORTANCE_FILE)


def _holdout(rows: int = 3000, seed: int = 3):
    rng = np.random.default_rng(seed)
    proba = rng.uniform(0.01, 0.6, rows)
    labels = (rng.uniform(size=rows) < proba).astype(int)
    return labels, proba


def _meta(version: str = "v0042") -> dict:
    labels, proba = _holdout()
    metrics = training.evaluate(labels, proba)
    metrics["recency_baseline_auc"] = 0.6123
    return {
        "model": "churn_model",
        "version": version,
        "feature_service": "churn_prediction",
        "features": ["days_since_last_txn", "open_rate_60d", "tickets_60d"],
        "num_rounds": 300,
        "metrics": metrics,
        "feature_importance": {"days_since_last_txn": 0.61, "open_rate_60d": 0.27, "tickets_60d": 0.12},
        "training_window": {
            "train_snapshots": ["2026-06-01", "2026-06-08", "2026-06-15"],
            "holdout_snapshots": ["2026-08-03", "2026-08-10"],
            "train_rows": 9000,
            "holdout_rows": 3000,
        },
        "trained_at": "2026-09-10T08:00:00",
        "registered_at": "2026-09-10T08:00:05+00:00",
        "checksum_sha256": "ab" * 32,
    }


def _decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: raises on a truncated or corrupt file
    return image


def test_plots_are_small_valid_pngs():
    labels, proba = _holdout()
    meta = _meta()
    pngs = {
        "roc": report.roc_png(labels, proba, baseline=np.random.default_rng(1).uniform(size=len(labels))),
        "calibration": report.calibration_png(meta["metrics"]["calibration"]),
        "importance": report.importance_png(meta["feature_importance"]),
    }
    for name, png in pngs.items():
        assert png.startswith(report.PNG_SIGNATURE), name
        assert report.png_size(png) == (480, 360), name
        image = _decoded(png)
        assert image.format == "PNG" and image.size == (480, 360), name
        # a real drawing, not a blank canvas: several colours, and the background is not everything
        colours = sorted(image.convert("RGB").getcolors(maxcolors=4096), reverse=True)
        assert len(colours) > 5 and colours[0][0] < 0.95 * 480 * 360, name
        assert 1_500 < len(png) < 30_000, (name, len(png))  # small: it goes into the metadata as base64


def test_plots_depend_on_their_inputs():
    labels, proba = _holdout()
    assert report.roc_png(labels, proba) != report.roc_png(labels, 1 - proba)
    assert report.importance_png({"a": 0.9, "b": 0.1}) != report.importance_png({"a": 0.1, "b": 0.9})


def test_png_size_rejects_non_png():
    with pytest.raises(ValueError):
        report.png_size(b"GIF89a" + b"\0" * 30)


def test_image_markdown_embeds_the_png_as_a_data_uri():
    png = report.importance_png({"a": 0.7, "b": 0.3})
    markdown = report.image_markdown(png, "importance")
    match = re.fullmatch(r"!\[importance\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match and base64.b64decode(match.group(1)) == png


def test_model_card_has_version_metrics_and_every_section():
    meta = _meta()
    metrics = meta["metrics"]
    card = report.model_card(meta, plots=report.PLOTS)
    assert card.startswith("# Model card: churn_model v0042")
    for section in (
        "## Intended use",
        "## Training window",
        "## Data sources",
        "## Metrics on the holdout",
        "## Calibration",
        "## Top features",
        "## Limitations",
        "## Retraining policy",
        "## Plots",
    ):
        assert section in card, section
    assert f"**{metrics['auc']:.4f}**" in card
    assert "0.6123" in card  # the recency baseline next to the model
    assert f"{metrics['auc'] - 0.6123:+.4f} above it" in card
    assert f"{metrics['expected_calibration_error']:.4f}" in card
    assert "2026-06-01 to 2026-06-15" in card and "2026-08-03 to 2026-08-10" in card
    assert "| days_since_last_txn | 0.610 | Days from the last purchase" in card
    assert "without any PII column" in card and "marketing" in card
    assert all(f"]({name})" in card for name in PLOT_FILES)
    assert len(re.findall(r"^\| \d+ \| \d+ \| 0\.\d{3} \| 0\.\d{3} \|$", card, re.M)) == len(
        metrics["calibration"]
    )


def test_card_summary_keeps_header_and_metrics_only():
    card = report.model_card(_meta("v0007"))
    summary = report.card_summary(card)
    assert "v0007" in summary and "## Metrics on the holdout" in summary
    assert "## Limitations" not in summary and "## Intended use" not in summary


def test_report_files_are_the_plots_and_a_card_linking_them():
    labels, proba = _holdout()
    files = report.report_files(_meta("v0003"), labels, proba, baseline=proba[::-1].copy())
    assert set(files) == {*PLOT_FILES, report.CARD_FILE}
    assert all(report.png_size(files[name]) == (480, 360) for name in PLOT_FILES)
    card = files[report.CARD_FILE].decode()
    assert "v0003" in card and "](roc.png)" in card


def test_registry_writes_the_report_before_the_version_is_visible(tmp_path):
    from resources.model_registry import ModelRegistry
    from resources.object_store import ObjectStore

    registry = ModelRegistry(ObjectStore(str(tmp_path)))
    seen = {}

    def artifacts(registered: dict) -> dict[str, bytes]:
        seen.update(registered)
        assert registry.versions() == []  # metadata.json is not written yet
        return {"model_card.md": f"card of {registered['version']}".encode()}

    version, is_new = registry.register("tree text", {"metrics": {"auc": 0.8}}, artifacts=artifacts)
    assert (version, is_new) == ("v0001", True)
    assert seen["version"] == "v0001" and len(seen["checksum_sha256"]) == 64
    assert registry.artifact(version, "model_card.md") == b"card of v0001"
    registry.put_artifact(version, "roc.png", b"png")
    assert sorted(registry.artifacts(version)) == ["model_card.md", "roc.png"]
    assert registry.artifact(version, "calibration.png") is None
    assert registry.artifact_uri(version, "roc.png").endswith("models/churn_model/versions/v0001/roc.png")
    with pytest.raises(ValueError):
        registry.put_artifact(version, "model.txt", b"not a model")  # never overwrite the model
    with pytest.raises(ValueError):
        registry.put_artifact(version, "../production.json", b"{}")
    with pytest.raises(ValueError):
        registry.put_artifact("v0099", "roc.png", b"png")  # not registered
    assert registry.model_text(version) == "tree text"


# --- the materialized platform (session fixture) ---


def _embedded_png(markdown: str) -> bytes:
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:120]
    return base64.b64decode(match.group(1))


def test_churn_model_materialization_shows_plots_and_card(platform):
    meta = platform.cloud.materialized["churn_model"]
    version = meta["version"]
    for key in ("roc_curve", "calibration_plot", "feature_importance_plot"):
        png = _embedded_png(meta[key])
        assert report.png_size(png) == (480, 360), key
        _decoded(png)
        assert len(meta[key]) < 40_000, key  # base64 of a small plot
    card = meta["model_card"]
    assert f"# Model card: churn_model {version}" in card
    assert f"**{meta['auc']:.4f}**" in card and f"{meta['recency_baseline_auc']:.4f}" in card
    assert meta["holdout_snapshots"][0] in card
    top_feature = next(iter(platform.registry().metadata(version)["feature_importance"]))
    assert f"| {top_feature} |" in card
    assert meta["model_card_uri"].endswith(f"versions/{version}/model_card.md")


def test_registry_keeps_the_report_next_to_the_model(platform):
    registry = platform.registry()
    meta = platform.cloud.materialized["churn_model"]
    version = meta["version"]
    assert {*PLOT_FILES, report.CARD_FILE} <= set(registry.artifacts(version))
    # the files in the registry are the images the Dagster UI shows
    assert registry.artifact(version, report.ROC_FILE) == _embedded_png(meta["roc_curve"])
    assert registry.artifact(version, report.CALIBRATION_FILE) == _embedded_png(meta["calibration_plot"])
    assert registry.artifact(version, report.IMPORTANCE_FILE) == _embedded_png(
        meta["feature_importance_plot"]
    )
    card = registry.artifact(version, report.CARD_FILE).decode()
    stored = registry.metadata(version)
    assert f"| version | **{version}** |" in card
    assert stored["registered_at"] in card and f"**{stored['metrics']['auc']:.4f}**" in card
    assert "](roc.png)" in card and "](calibration.png)" in card and "](importance.png)" in card
    # no PII in what the docs or the endpoint may link
    emails = platform.warehouse().query("select email from customers limit 50")["email"].to_list()
    assert not any(email in card for email in emails)


def test_deployment_shows_the_served_version_and_its_card(platform):
    deployed = platform.cloud.materialized["churn_model_deployment"]
    served = deployed["served_version"]
    assert served == platform.cloud.materialized["churn_model"]["version"]
    assert f"# Model card: churn_model {served}" in deployed["model_card"]
    assert "## Metrics on the holdout" in deployed["model_card"]
    assert deployed["model_card_uri"].endswith(f"versions/{served}/model_card.md")
