"""Versioned model artifacts in the object store, with a production pointer.

Layout: ``models/churn_model/versions/<version>/{model.txt, metadata.json}`` and
``models/churn_model/production.json``. The metadata is written last, so a version is visible only when
complete; the pointer is one atomic object, so the endpoint sees the old production model or the new one.
A version can also hold report artifacts next to its model (``roc.png``, ``calibration.png``,
``importance.png``, ``model_card.md``: ``register(artifacts=...)``, ``put_artifact``), for the docs to link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import dagster as dg

from resources.object_store import ObjectStore, ObjectStoreResource

MODEL_NAME = "churn_model"
PREFIX = f"models/{MODEL_NAME}"
RESERVED_FILES = ("model.txt", "metadata.json")  # written by register(); never an artifact


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

    def _artifact_key(self, version: str, name: str) -> str:
        if not name or "/" in name or name.startswith(".") or name in RESERVED_FILES:
            raise ValueError(
                f"{name!r} is not a valid artifact name (a plain file name, not {RESERVED_FILES})"
            )
        return f"{PREFIX}/versions/{version}/{name}"

    def put_artifact(self, version: str, name: str, data: bytes) -> str:
        """Store a report file (plot, model card) next to a registered version; returns its object key."""
        if version not in self.versions():
            raise ValueError(f"model version {version} is not registered in the {self.store.describe()}")
        key = self._artifact_key(version, name)
        self.store.put_bytes(key, data)
        return key

    def artifact(self, version: str, name: str) -> bytes | None:
        """A report file of a version, or None if that version has none by this name."""
        key = self._artifact_key(version, name)
        return self.store.get_bytes(key) if self.store.exists(key) else None

    def artifacts(self, version: str) -> list[str]:
        """Names of the report files stored next to a version's model."""
        folder = f"{PREFIX}/versions/{version}/"
        names = (key.removeprefix(folder) for key in self.store.list(folder))
        return [name for name in names if name not in RESERVED_FILES]

    def artifact_uri(self, version: str, name: str) -> str:
        """Where a reader outside the registry (a browser, the docs) finds the artifact."""
        return self.store.uri(self._artifact_key(version, name))

    def register(
        self,
        model_text: str,
        metadata: dict,
        artifacts: Callable[[dict], Mapping[str, bytes]] | None = None,
    ) -> tuple[str, bool]:
        """Store a model; a model identical to an existing version reuses it. Returns (version, is_new).

        ``artifacts``, given the full metadata (with version, checksum, registered_at), returns report files
        by name; they are written before the metadata, so a visible version always has its report.
        """
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
        for name, data in (artifacts(meta) if artifacts else {}).items():
            self.store.put_bytes(self._artifact_key(version, name), data)
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
