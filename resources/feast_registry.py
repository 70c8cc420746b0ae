"""Feast's file registry, replaced whole or not at all.

Feast's ``FileRegistryStore`` writes the registry in place: it opens ``registry.db`` for writing, which empties
the file, serializes the registry and writes it. A reader in that window (the endpoint, a step, the Feast CLI)
parses an empty registry and finds no feature service, and a writer killed in it leaves the registry empty
for good. Every online load records its interval in the registry, so the window opens on every run.

This store writes a temporary file next to the registry, syncs it and renames it over the registry: readers
see the old registry or the new one. ``feature_store.yaml`` names it (``registry_store_type``)."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

from feast.infra.registry.file import FileRegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.utils import _utc_now


def write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a synced temporary file in the same folder and a rename: readers see
    the old content or the new, never a part. One temporary file per writer (code servers and executor
    threads write side by side); a writer that dies leaves its temporary file, never a short ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class AtomicFileRegistryStore(FileRegistryStore):
    """``FileRegistryStore`` with :func:`write_atomically` (reading is Feast's: one ``read_bytes``)."""

    def _write_registry(self, registry_proto: RegistryProto):
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        write_atomically(self._filepath, registry_proto.SerializeToString())
