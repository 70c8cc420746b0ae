"""Fingerprints that decide what must be redone, without Dagster: the Feast repo's code version and the inputs
of the training set."""

from __future__ import annotations

import hashlib
import json

from core import catalog


def repo_version() -> str:
    """Code version of the Feast repo: changes when the catalog or the repo definition changes."""
    from core.settings import FEATURE_REPO, REPO_ROOT

    digest = hashlib.sha256()
    for path in (REPO_ROOT / "core" / "catalog.py", FEATURE_REPO / "repo.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def training_inputs(objects) -> str:
    """A fingerprint of everything the training set is built from: the labels, Feast's compacted sources and
    the Feast repo (features, service). Equal fingerprints give the same training set."""
    offline = [catalog.VIEW_OFFLINE_KEY[view] for view in catalog.active_views()]
    sums = {key: objects.checksum(key) for key in (catalog.LABELS_EXPORT_KEY, *offline)}
    sums["feast_repo"] = repo_version()
    if len(catalog.feature_names()) != len(catalog.FEATURES):  # a mapping switched features off
        sums["features"] = ",".join(catalog.feature_names())
    return hashlib.sha256(json.dumps(sums, sort_keys=True).encode()).hexdigest()[:16]
