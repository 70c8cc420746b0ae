"""The cloud object store: a local folder (embedded profile) or an S3 bucket (hybrid profile).

Everything that crosses the on-prem/cloud boundary lands here. Writes are atomic: a reader sees the old
object or the new one, never half of one (local files are written aside and renamed; an S3 PUT is atomic).
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import Field

from core.redaction import scrub
from core.settings import object_uri


def _timeout_s() -> float:
    """Seconds to wait for the S3 endpoint per attempt (HYBRID_S3_TIMEOUT_S, default 30)."""
    return float(os.environ.get("HYBRID_S3_TIMEOUT_S", "30"))


ROW_GROUP_ROWS = 131_072


class ObjectStoreError(RuntimeError):
    """The object store could not be reached; the message names it and its endpoint. The driver's own words
    are scrubbed of literal values (core/redaction.py): on-prem steps pass this message to Dagster."""


class ObjectStore:
    def __init__(self, root: str, endpoint: str | None = None, region: str | None = None):
        self.root = root.rstrip("/")
        self.endpoint = endpoint
        self.is_s3 = self.root.startswith("s3://")
        if self.is_s3:
            scheme, _, host = (endpoint or "").rpartition("://")
            self._fs = pafs.S3FileSystem(
                endpoint_override=host or None,
                scheme=scheme or "https",
                region=region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                connect_timeout=_timeout_s(),
                request_timeout=_timeout_s(),
                retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
            )
            self._base = self.root.removeprefix("s3://")
        else:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            self._fs = pafs.LocalFileSystem()
            self._base = str(Path(self.root).resolve())

    def _s3_client(self):
        if not hasattr(self, "_boto"):
            import boto3
            from botocore.config import Config

            self._boto = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                config=Config(
                    connect_timeout=_timeout_s(),
                    read_timeout=_timeout_s(),
                    retries={"max_attempts": 2, "mode": "standard"},
                ),
            )
        return self._boto

    def describe(self) -> str:
        return f"object store {self.root}" + (f" at {self.endpoint}" if self.endpoint else "")

    def _path(self, key: str) -> str:
        return f"{self._base}/{key.lstrip('/')}"

    def uri(self, key: str) -> str:
        """Address a reader outside this class (Feast, Polars) uses for ``key``."""
        return object_uri(self.root, key)

    def exists(self, key: str) -> bool:
        return self._fs.get_file_info(self._path(key)).type != pafs.FileType.NotFound

    def list(self, prefix: str = "") -> list[str]:
        selector = pafs.FileSelector(self._path(prefix), recursive=True, allow_not_found=True)
        base = self._base + "/"
        return sorted(
            info.path.removeprefix(base)
            for info in self._fs.get_file_info(selector)
            if info.type == pafs.FileType.File and ".tmp-" not in info.path
        )

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        if self.is_s3:
            # one PUT: atomic for readers, and a plain MD5 ETag (multipart ETags break s3fs checksums in Feast)
            bucket, _, name = target.partition("/")
            try:
                self._s3_client().put_object(Bucket=bucket, Key=name, Body=data)
            except Exception as exc:
                raise ObjectStoreError(
                    f"writing {key} to the {self.describe()} failed: {scrub(str(exc))}"
                ) from exc
            return
        folder, _, name = target.rpartition("/")
        self._fs.create_dir(folder, recursive=True)
        # a hidden name: dataset readers (Arrow, dask in Feast) skip it while it is being written
        tmp = f"{folder}/.{name}.tmp-{uuid.uuid4().hex}"
        with self._fs.open_output_stream(tmp) as out:
            out.write(data)
        self._fs.move(tmp, target)

    @contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """A missing object is a FileNotFoundError naming it; any other failure an ObjectStoreError naming the
        store (scrubbed: a driver's message may carry values)."""
        try:
            yield
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{key} is not in the {self.describe()}") from exc
        except OSError as exc:
            raise ObjectStoreError(
                f"reading {key} from the {self.describe()} failed: {scrub(str(exc))}"
            ) from exc

    def get_bytes(self, key: str) -> bytes:
        with self._reading(key), self._fs.open_input_stream(self._path(key)) as src:
            return src.read()

    def delete(self, key: str) -> None:
        if self.exists(key):
            self._fs.delete_file(self._path(key))

    @staticmethod
    def parquet_bytes(frame: pl.DataFrame) -> bytes:
        buffer = io.BytesIO()
        # row groups of 128k rows: a streaming reader (the online loader) holds one group, not the file
        pq.write_table(frame.to_arrow(), buffer, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        return buffer.getvalue()

    def write_parquet(self, key: str, frame: pl.DataFrame) -> None:
        self.put_bytes(key, self.parquet_bytes(frame))

    def checksum(self, key: str) -> str | None:
        """The content checksum :meth:`checksums` reports for one object, or None if it does not exist."""
        if self.is_s3:
            bucket, _, name = self._path(key).partition("/")
            try:
                return self._s3_client().head_object(Bucket=bucket, Key=name)["ETag"].strip('"')
            except Exception as exc:
                if getattr(exc, "response", {}).get("Error", {}).get("Code") in (
                    "404",
                    "NoSuchKey",
                    "NotFound",
                ):
                    return None
                raise ObjectStoreError(
                    f"reading {key} from the {self.describe()} failed: {scrub(str(exc))}"
                ) from exc
        import hashlib

        return hashlib.md5(self.get_bytes(key)).hexdigest() if self.exists(key) else None

    def write_parquet_if_changed(self, key: str, frame: pl.DataFrame) -> bool:
        """Write ``frame`` unless the object already holds exactly these bytes; True if it was written. A rerun
        that computes the same rows leaves the object (and its checksum) as it was."""
        import hashlib

        data = self.parquet_bytes(frame)
        if self.checksum(key) == hashlib.md5(data).hexdigest():
            return False
        self.put_bytes(key, data)
        return True

    def read_parquet(self, key: str, columns: list[str] | None = None, filter=None) -> pl.DataFrame:
        """One Parquet object, or every Parquet object under a folder key (ending in ``/``) as one frame.
        ``filter`` (a ``pyarrow.dataset`` expression) is applied while reading a folder."""
        if not key.endswith("/"):
            return pl.from_arrow(pq.read_table(io.BytesIO(self.get_bytes(key)), columns=columns))
        import pyarrow as pa

        if not self.list(key):
            raise FileNotFoundError(f"{key} is not in the {self.describe()} (no object under it)")
        batches = list(self.iter_batches(key, columns=columns, filter=filter))
        if not batches:
            import pyarrow.dataset as ds

            schema = ds.dataset(self._path(key), filesystem=self._fs, format="parquet").schema
            return pl.from_arrow(schema.empty_table().select(columns) if columns else schema.empty_table())
        return pl.from_arrow(pa.Table.from_batches(batches))

    def checksums(self, prefix: str) -> dict[str, str]:
        """Content checksum of every object under ``prefix`` (S3: the ETag, an MD5 for our single PUTs;
        local: the MD5 of the file): how a reader tells which daily objects changed since it last looked."""
        if self.is_s3:
            bucket, _, name = self._path(prefix).partition("/")
            pages = self._s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=name)
            base = self._base.partition("/")[2]
            base = f"{base}/" if base else ""
            return {
                o["Key"].removeprefix(base): o["ETag"].strip('"')
                for page in pages
                for o in page.get("Contents", [])
                if ".tmp-" not in o["Key"]
            }
        return {key: self.checksum(key) for key in self.list(prefix)}

    def iter_batches(self, key: str, columns: list[str] | None = None, filter=None, batch_rows: int = 65_536):
        """Stream a Parquet object (or every Parquet object under a prefix) as Arrow record batches, so that a
        reader's memory does not grow with the data. ``filter`` is a ``pyarrow.dataset`` expression."""
        import pyarrow.dataset as ds

        with self._reading(key):
            dataset = ds.dataset(self._path(key), filesystem=self._fs, format="parquet")
            # little read-ahead: Arrow's default (16 batches) would hold a sizeable share of a big file
            yield from dataset.to_batches(
                columns=columns, filter=filter, batch_size=batch_rows, batch_readahead=2, fragment_readahead=1
            )


class ObjectStoreResource(dg.ConfigurableResource):
    """Where curated, non-PII data and model artifacts live (a folder, or an S3 bucket)."""

    root: str = Field(description="Local folder, or s3://bucket")
    endpoint: str | None = Field(default=None, description="S3 API endpoint; unset means AWS itself")

    def client(self) -> ObjectStore:
        return ObjectStore(self.root, endpoint=self.endpoint)
