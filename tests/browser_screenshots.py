"""Refresh the screenshots of docs/ui-walkthrough.md from the browser test's artifacts.

    .venv/bin/pytest tests/test_browser.py -s        # writes artifacts/browser/*.png ($HYBRID_ARTIFACTS)
    .venv/bin/python -m tests.browser_screenshots    # copies the walk-through's ones into docs/img/

Each image is scaled down to at most MAX_WIDTH pixels wide and stored as a palette PNG; colours (and, if
needed, size) are reduced until it is under MAX_BYTES.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from core.settings import REPO_ROOT

# artifact (without .png) -> file under docs/img/ that docs/ui-walkthrough.md shows
DOCS_IMAGES = {
    "01-code-locations": "ui-code-locations.png",
    "02-asset-lineage": "ui-asset-lineage.png",
    "03-onprem-job": "ui-onprem-job.png",
    "03b-onprem-backfill-dialog": "ui-onprem-backfill-dialog.png",
    "06-runs": "ui-runs.png",
    "07-gx-check": "ui-gx-check.png",
    "09-churn-model": "ui-churn-model.png",
    "10-churn-model-roc_curve": "ui-roc-curve.png",
    "11-deployment": "ui-deployment.png",
    "12-automation": "ui-automation.png",
}
MAX_WIDTH = 1000
MAX_BYTES = 150_000


def shrink(source: Path) -> bytes:
    """``source`` as a palette PNG at most MAX_WIDTH wide and, where possible, under MAX_BYTES."""
    from PIL import Image

    image = Image.open(source).convert("RGB")
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.LANCZOS)
    data = b""
    for scale in (1.0, 0.85, 0.7):
        scaled = image
        if scale < 1:
            scaled = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        for colors in (256, 128, 64):
            buffer = io.BytesIO()
            scaled.quantize(colors=colors, dither=Image.Dither.NONE).save(buffer, "PNG", optimize=True)
            data = buffer.getvalue()
            if len(data) <= MAX_BYTES:
                return data
    return data


def main(argv: list[str] | None = None) -> int:
    from tests.browser_helpers import artifacts_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=None, help="default: $HYBRID_ARTIFACTS")
    parser.add_argument("--target", type=Path, default=REPO_ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    source = args.source or artifacts_dir()
    args.target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for name, target_name in DOCS_IMAGES.items():
        path = source / f"{name}.png"
        if not path.exists():
            print(f"skipped {name}.png: not in {source}")
            continue
        data = shrink(path)
        (args.target / target_name).write_bytes(data)
        copied += 1
        print(f"{path} -> {args.target / target_name} ({len(data) // 1000} kB)")
    if not copied:
        print(f"no screenshots in {source}: run `pytest tests/test_browser.py` first", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
