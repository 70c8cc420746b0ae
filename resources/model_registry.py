"""Versioned model artifacts in the object store, with a production pointer.

Layout: ``models/churn_model/versions/<version>/{model.txt, metadata.json}`` and
``models/churn_model/production.json``. The metadata is written last, so a version is visible only when
complete; the pointer is one atomic object, so the endpoint sees the old production model or the new one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg

from resources.object_store import ObjectStore, ObjectStoreResource

MODEL_NAME = "churn_model"
PREFIX = f"models/{MODEL_NAME}"


class ModelRegistry:
    def __init__(self, store: ObjectStore):
        self.store = store

    def versions(self) -> list[str]:
        keys = self.store.list(f"{PREFIX}/versions/")
        return sorted({k.split("/")[3] for k in keys if k.endswith("/metadata.json")})

    def metadata(self, version: str) -> dict:
        return json.loads(self.store.get_bytes(f"{PREFIX}/versions/{version}/metadata.json"))

    def model_text(self, version: str) -> str:
        text = self.store.get_bytes(f"{PREFIX}/versions/{version}/model.txt").decode()
        expected = self.metadata(version)["checksum_sha256"]
        if hashlib.sha256(text.encode()).hexdigest() != expected:
            raise ValueError(f"model {version} in the {self.store.describe()} does not match its checksum")
        return text

    def register(self, model_text: str, metadata: dict) -> tuple[str, bool]:
        """Store a model; a model identical to an existing version reuses it. Returns (version, is_new)."""
        checksum = hashlib.sha256(model_text.encode()).hexdigest()
        for version in self.versions():
            if self.metadata(version).get("checksum_sha256") == checksum:
                return version, False
        existing = self.versions()
        version = f"v{int(existing[-1][1:]) + 1:04d}" if existing else "v0001"
        meta = {
            **metadata,
            "version": version,
            "checksum_sha256": checksum,
            "registered_at": datetime.now(UTC).isoformat(),
        }
        self.store.put_bytes(f"{PREFIX}/versions/{version}/model.txt", model_text.encode())
        self.store.put_bytes(
            f"{PREFIX}/versions/{version}/metadata.json", json.dumps(meta, indent=2).encode()
        )
        return version, True

    def production(self) -> dict | None:
        """The production pointer (version, promoted_at, metrics), or None before the first deployment."""
        key = f"{PREFIX}/production.json"
        if not self.store.exists(key):
            return None
        return json.loads(self.store.get_bytes(key))

    def promote(self, version: str, reason: str) -> dict:
        meta = self.metadata(version)
        pointer = {
            "version": version,
            "promoted_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "metrics": meta.get("metrics", {}),
            "feature_service": meta.get("feature_service"),
            "checksum_sha256": meta["checksum_sha256"],
        }
        self.store.put_bytes(f"{PREFIX}/production.json", json.dumps(pointer, indent=2).encode())
        return pointer


class ModelRegistryResource(dg.ConfigurableResource):
    object_store: ObjectStoreResource

    def client(self) -> ModelRegistry:
        return ModelRegistry(self.object_store.client())
