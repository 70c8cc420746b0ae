"""The churn model's report: ROC curve, reliability diagram, feature importance (small PNGs) and a model card.

Pure functions: they take labels, probabilities, the calibration table, the importance shares and the
registry metadata, and return PNG bytes or markdown. ``churn_model`` shows them in the Dagster UI and stores
them next to the model in the registry (``models/churn_model/versions/<version>/``).
"""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Mapping, Sequence

import numpy as np

from core import catalog

# 6 x 4.5 inches at 80 dpi: 480 x 360 pixels in 32 colours, about 10 kB per plot, so that the base64 in the
# Dagster metadata stays small
FIGSIZE, DPI, PALETTE_COLOURS = (6.0, 4.5), 80, 32
TOP_FEATURES = 15
ROC_FILE, CALIBRATION_FILE, IMPORTANCE_FILE, CARD_FILE = (
    "roc.png",
    "calibration.png",
    "importance.png",
    "model_card.md",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure with its own Agg canvas: no pyplot, no global backend switch, safe in any thread.
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    from PIL import Image  # Pillow: a dependency of matplotlib

    fig.canvas.draw()
    image = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
    # A plot has a few flat colours: a 32-colour palette looks the same at about a third of the bytes.
    buffer = io.BytesIO()
    image.quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header; ValueError if the bytes are not a PNG."""
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", png[16:24])


def roc_png(
    labels: np.ndarray, proba: np.ndarray, baseline: np.ndarray | None = None, title: str = "ROC curve"
) -> bytes:
    """The model's ROC curve on the holdout, with the recency baseline's curve (``baseline``: its scores)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.asarray(labels)
    fig = _figure()
    ax = fig.add_subplot()
    curves = [("model", np.asarray(proba), "tab:blue")]
    if baseline is not None:
        curves.append(("recency baseline", np.asarray(baseline), "tab:orange"))
    for name, scores, color in curves:
        fpr, tpr, _ = roc_curve(labels, scores)
        ax.plot(fpr, tpr, color=color, lw=2, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="chance (AUC 0.5)")
    ax.set(
        xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate", title=title
    )
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def calibration_png(
    calibration: Sequence[Mapping], title: str = "Calibration (reliability diagram)"
) -> bytes:
    """Observed churn rate against the mean predicted probability per bin (``training.evaluate``'s table)."""
    predicted = np.array([b["predicted"] for b in calibration], dtype=float)
    observed = np.array([b["observed"] for b in calibration], dtype=float)
    fig = _figure()
    ax = fig.add_subplot()
    top = float(min(1.0, max(0.05, *(predicted.tolist() or [0]), *(observed.tolist() or [0])) * 1.1))
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", color="tab:blue", lw=2, label="model (one point per bin)")
    ax.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title=title,
    )
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def importance_png(
    importance: Mapping[str, float], top: int = TOP_FEATURES, title: str = "Feature importance"
) -> bytes:
    """Horizontal bars of the ``top`` features by share of total gain, the largest on top."""
    items = sorted(importance.items(), key=lambda kv: -kv[1])[:top]
    fig = _figure()
    ax = fig.add_subplot()
    names = [name for name, _ in items][::-1]
    shares = [share for _, share in items][::-1]
    ax.barh(names, shares, color="tab:blue")
    ax.set(xlabel="share of total gain", title=f"{title} (top {len(items)})")
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def image_markdown(png: bytes, alt: str) -> str:
    """Markdown that shows the PNG inline (a data: URI), for ``dg.MetadataValue.md``."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def _span(snapshots: Sequence[str]) -> str:
    if not snapshots:
        return "none"
    return snapshots[0] if len(snapshots) == 1 else f"{snapshots[0]} to {snapshots[-1]}"


def model_card(meta: Mapping, plots: Mapping[str, str] | None = None, auc_floor: float | None = None) -> str:
    """A model card in markdown from a registry version's metadata (``metadata.json``).

    ``plots``: caption -> link (e.g. ``{"ROC curve": "roc.png"}``, relative to the card in the registry).
    """
    metrics = meta.get("metrics", {})
    window = meta.get("training_window", {})
    importance = meta.get("feature_importance", {})
    version = meta.get("version", "unregistered")
    auc, baseline = metrics.get("auc"), metrics.get("recency_baseline_auc")
    features = list(meta.get("features", []))
    labels = catalog.LabelDefinition.from_metadata(meta.get("label_definition"))
    views = {catalog.ACTIVITY_VIEW: [], catalog.ENGAGEMENT_VIEW: []}
    off = [f.name for f in catalog.FEATURES if features and f.name not in features]
    for name in features:
        feature = catalog.BY_NAME.get(name)
        views.setdefault(feature.view if feature else "other", []).append(name)

    def num(value, fmt=".4f") -> str:
        return "n/a" if value is None else format(value, fmt)

    lines = [
        f"# Model card: {meta.get('model', 'churn_model')} {version}",
        "",
        "| | |",
        "|---|---|",
        f"| version | **{version}** |",
        f"| registered at | {meta.get('registered_at', 'n/a')} |",
        f"| trained at | {meta.get('trained_at', 'n/a')} |",
        f"| model | LightGBM, {meta.get('num_rounds', 'n/a')} rounds, fixed parameters and seed |",
        f"| feature service | `{meta.get('feature_service', catalog.FEATURE_SERVICE)}` ({len(features)} features) |",
        f"| checksum (SHA-256) | `{str(meta.get('checksum_sha256', 'n/a'))[:16]}...` |",
        "",
        "## Intended use",
        "",
        f"Scores how likely a customer with a purchase in the last {labels.active_days} days is to make no "
        f"purchase in the next {labels.horizon_days} days (churn), so that retention teams can rank "
        "customers for outreach. The prediction endpoint (`POST /predict`) serves it with the latest features "
        "from the Feast online store. It is not meant for automatic decisions about individuals without a "
        "person in the loop, nor for customers outside that population (sign-ups without a purchase yet, "
        "customers inactive for longer).",
        "",
        "## Training window",
        "",
        f"- Training snapshots: {_span(window.get('train_snapshots', []))} "
        f"({len(window.get('train_snapshots', []))} snapshots, one every {labels.every_days} days, "
        f"{window.get('train_rows', 'n/a')} rows)",
        f"- Holdout snapshots: {_span(window.get('holdout_snapshots', []))} "
        f"({window.get('holdout_rows', 'n/a')} rows); training labels end "
        f"{labels.horizon_days} days before the holdout starts, so no training label saw holdout-time data",
        "",
        "## Data sources",
        "",
        f"- **On-prem features** ({len(views[catalog.ACTIVITY_VIEW])}, feature view `{catalog.ACTIVITY_VIEW}`): "
        "computed in the on-prem warehouse from customers, transactions and support tickets, and exported "
        f"without any PII column (`{catalog.ACTIVITY_EXPORT_KEY}`).",
        f"- **Cloud marketing features** ({len(views[catalog.ENGAGEMENT_VIEW])}, feature view "
        f"`{catalog.ENGAGEMENT_VIEW}`): email engagement computed in the cloud from the marketing events.",
        *(
            [
                f"- **Off in this deployment** ({len(off)}): {', '.join(f'`{n}`' for n in off)}; the source "
                "mapping leaves out what they need (`hybrid sources check` says what)."
            ]
            if off
            else []
        ),
        f"- **Labels**: churn labels exported from on-prem (`{catalog.LABELS_EXPORT_KEY}`).",
        "- Feast joins them point-in-time correct (`get_historical_features`): every training row sees only "
        "data from before its snapshot.",
        "",
        "## Metrics on the holdout",
        "",
        "| metric | model | recency baseline |",
        "|---|---|---|",
        f"| AUC | **{num(auc)}** | {num(baseline)} |",
        f"| log loss | {num(metrics.get('log_loss'))} | |",
        f"| Brier score | {num(metrics.get('brier'))} | |",
        f"| churn rate (base rate) | {num(metrics.get('base_rate'), '.2%')} | |",
        "",
        "The recency baseline scores customers by days since their last purchase alone"
        + (f"; the model's AUC is {auc - baseline:+.4f} above it." if auc is not None and baseline else "."),
    ]
    if auc_floor is not None:
        lines.append(f"Deployment needs an AUC of at least {auc_floor:g} (the `churn_model_quality` gate).")
    lines += [
        "",
        "## Calibration",
        "",
        f"Expected calibration error: **{num(metrics.get('expected_calibration_error'))}** "
        "(mean gap between predicted probability and observed churn rate, weighted by rows).",
        "",
        "| bin | rows | mean predicted | observed |",
        "|---|---|---|---|",
        *[
            f"| {b['bin']} | {b['rows']} | {b['predicted']:.3f} | {b['observed']:.3f} |"
            for b in metrics.get("calibration", [])
        ],
        "",
        "## Top features",
        "",
        "| feature | share of gain | what it is |",
        "|---|---|---|",
        *[
            f"| {name} | {share:.3f} | {catalog.BY_NAME[name].description if name in catalog.BY_NAME else ''} |"
            for name, share in sorted(importance.items(), key=lambda kv: -kv[1])[:10]
        ],
        "",
        "## Limitations",
        "",
        "- Trained on synthetic data from the platform's generator; its quality on real customers is unknown.",
        f"- The holdout is the last {len(window.get('holdout_snapshots', [])) or 'few'} weekly snapshots: "
        "metrics describe a few weeks, not seasonality or long-term drift.",
        "- Gain importance shows what the trees split on, not causes; correlated features share credit.",
        "- Served features are the latest snapshot in the online store; a feature older than the view's "
        f"{catalog.FEATURE_TTL_DAYS}-day TTL is not served.",
        "",
        "## Retraining policy",
        "",
        "`churn_model` trains a new version only when the labelled snapshots, the feature list or the "
        "parameters differ from the latest registered version; a model identical to an existing version "
        "reuses it. A new version is deployed only if the blocking `churn_model_quality` check passes: AUC "
        "above the floor and not worse than production on the same holdout (within the tolerance).",
    ]
    if plots:
        lines += ["", "## Plots"]
        for caption, link in plots.items():
            lines += ["", f"![{caption}]({link})"]
    return "\n".join(lines) + "\n"


def card_summary(card: str) -> str:
    """The card's header table and metrics: what the deployment asset shows next to a link to the card."""
    kept, keep = [], True
    for line in card.splitlines():
        if line.startswith("## "):
            keep = line in ("## Metrics on the holdout",)
        if keep:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


PLOTS = {"ROC curve": ROC_FILE, "Calibration": CALIBRATION_FILE, "Feature importance": IMPORTANCE_FILE}


def report_files(
    meta: Mapping, labels: np.ndarray, proba: np.ndarray, baseline: np.ndarray | None = None
) -> dict[str, bytes]:
    """Every file of a version's report, by file name: the three PNGs and the card (linking them)."""
    version = meta.get("version", "unregistered")
    metrics = meta.get("metrics", {})
    return {
        ROC_FILE: roc_png(labels, proba, baseline, title=f"ROC curve on the holdout, {version}"),
        CALIBRATION_FILE: calibration_png(metrics.get("calibration", []), title=f"Calibration, {version}"),
        IMPORTANCE_FILE: importance_png(
            meta.get("feature_importance", {}), title=f"Feature importance, {version}"
        ),
        CARD_FILE: model_card(meta, plots=PLOTS).encode(),
    }
