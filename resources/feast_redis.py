"""Feast's Redis online-store layout, in one public module: the bytes the online loader
(resources/online_loader.py) writes and the endpoint (serving/app.py) reads.

One Redis hash per entity. Its key is Feast's serialized entity key followed by the project name; its fields
are ``_ts:<view>`` (the row's event time, a serialized ``google.protobuf.Timestamp``) and, per feature, the
murmur3 hash of ``<view>:<feature>`` (a serialized ``feast.types.Value``). ``<view>`` is the feature view
name, with ``_v<N>`` when the registry versions feature views.

Feast exposes these pieces only as private helpers. This is the only module of ours that imports them, and
it wraps each one in a public function or class. tests/test_feast_redis.py compares what these produce with
what Feast writes and reads, and checks the signatures of the helpers, so that a Feast upgrade that changes
them makes the tests fail.

The column encoders build whole Arrow columns with numpy: the loader writes millions of rows with them.
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Everything that uses this module also uses Feast. It is imported here because ``decode_value`` runs once
# per feature and customer on the serving hot path. Feast's private helpers are imported inside the
# functions below, so that a Feast without them breaks only the Redis path and not the embedded profile.
from feast.protos.feast.types.Value_pb2 import Value

ENTITY_KEY_SERIALIZATION_VERSION = 3  # what feature_store.yaml sets; the encoder checks any version it gets
_EMPTY = pa.scalar(b"", pa.binary())


# -- names: feature view, hash fields ---------------------------------------------------------------------
def versioned_view_name(view, config) -> str:
    """The feature view's name as Feast uses it in Redis (``<view>_v<N>`` when versioning is on)."""
    from feast.infra.online_stores.redis import _versioned_fv_name

    return _versioned_fv_name(view, config)


def timestamp_field(view_name: str) -> bytes:
    """The hash field holding a view's event time. ``view_name`` comes from ``versioned_view_name``."""
    return f"_ts:{view_name}".encode()


def feature_field(view_name: str, feature: str) -> bytes:
    """The hash field holding a feature: 4 bytes of murmur3 of ``<view>:<feature>``."""
    from feast.infra.online_stores.helpers import _mmh3

    return _mmh3(f"{view_name}:{feature}")


# -- entity keys --------------------------------------------------------------------------------------------
class EntityKeyEncoder:
    """Feast's Redis key (serialized entity key + project) for a single int64 join key, built column-wise.

    The layout is taken from Feast itself once (key = prefix + 8-byte little-endian id + suffix) and checked
    against Feast for a few values, so a change in Feast's serialization fails loudly instead of silently."""

    def __init__(
        self, join_key: str, project: str, serialization_version: int = ENTITY_KEY_SERIALIZATION_VERSION
    ):
        probe = 0x0102030405060708
        sample = feast_entity_key(join_key, project, probe, serialization_version)
        at = sample.find(struct.pack("<q", probe))
        if at < 0:
            raise RuntimeError(f"unsupported Feast entity key layout (version {serialization_version})")
        self.prefix, self.suffix = sample[:at], sample[at + 8 :]
        for v in (0, 1, -5, 2**40 + 3, 123456789):
            if self.key(v) != feast_entity_key(join_key, project, v, serialization_version):
                raise RuntimeError("Feast's entity key serialization differs from the fast encoder")

    @classmethod
    def for_config(cls, join_key: str, config) -> EntityKeyEncoder:
        """The encoder for a Feast ``RepoConfig``'s project and serialization version."""
        return cls(join_key, config.project, config.entity_key_serialization_version)

    def key(self, entity_id: int) -> bytes:
        """The Redis key of one entity."""
        return self.prefix + struct.pack("<q", entity_id) + self.suffix

    def encode(self, ids: np.ndarray) -> pa.BinaryArray:
        """The Redis keys of a column of entity ids."""
        n = len(ids)
        width = len(self.prefix) + 8 + len(self.suffix)
        out = np.empty((n, width), dtype=np.uint8)
        out[:, : len(self.prefix)] = np.frombuffer(self.prefix, dtype=np.uint8)
        out[:, len(self.prefix) : len(self.prefix) + 8] = (
            ids.astype("<i8", copy=False).view(np.uint8).reshape(n, 8)
        )
        out[:, len(self.prefix) + 8 :] = np.frombuffer(self.suffix, dtype=np.uint8)
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def feast_entity_key(
    join_key: str, project: str, entity_id: int, serialization_version: int = ENTITY_KEY_SERIALIZATION_VERSION
) -> bytes:
    """The Redis key of one int64 entity, built by Feast itself (slow: the reference for the encoder)."""
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey

    entity_key = EntityKey(join_keys=[join_key], entity_values=[Value(int64_val=entity_id)])
    return _redis_key(project, entity_key, entity_key_serialization_version=serialization_version)


# -- values and event times: Arrow column -> serialized protobuf per row ------------------------------------
def _varints(values: np.ndarray, tag: int, present: np.ndarray) -> pa.BinaryArray:
    """``tag`` + protobuf varint of each value (two's complement for negatives), ``b""`` where not present."""
    u = values.astype(np.int64, copy=False).view(np.uint64)
    n = len(u)
    groups = np.empty((n, 10), dtype=np.uint8)
    nbytes = np.ones(n, dtype=np.int64)
    rest = u.copy()
    for k in range(10):
        groups[:, k] = (rest & np.uint64(0x7F)).astype(np.uint8)
        rest >>= np.uint64(7)
        more = rest != 0
        if k < 9:
            nbytes += more
        if not more.any():
            groups = groups[:, : k + 1]
            break
    width = groups.shape[1]
    cols = np.arange(width)
    groups |= np.where(cols[None, :] < (nbytes - 1)[:, None], 0x80, 0).astype(np.uint8)
    out = np.empty((n, width + 1), dtype=np.uint8)
    out[:, 0] = tag
    out[:, 1:] = groups
    lengths = np.where(present, nbytes + 1, 0)
    mask = np.arange(width + 1)[None, :] < lengths[:, None]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.BinaryArray.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out[mask].tobytes())]
    )


def _fixed(values: np.ndarray, tag: int, dtype: str, present: np.ndarray) -> pa.BinaryArray:
    """``tag`` + little-endian fixed-width value, ``b""`` where not present."""
    raw = values.astype(dtype, copy=False).view(np.uint8).reshape(len(values), -1)
    out = np.empty((len(values), raw.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = tag
    out[:, 1:] = raw
    lengths = np.where(present, out.shape[1], 0)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.BinaryArray.from_buffers(
        pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(out[present].tobytes())]
    )


def encode_values(column: pa.Array, value_type) -> pa.BinaryArray:
    """Each row's ``feast.types.Value`` as Feast serializes it. Null and NaN become the empty Value, as in
    ``materialize``. Int64 and Double are encoded column-wise; other types go through Feast's converter."""
    from feast.value_type import ValueType

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if value_type == ValueType.DOUBLE and pa.types.is_floating(column.type):
        values = column.fill_null(0.0).to_numpy(zero_copy_only=False).astype(np.float64)
        return _fixed(values, 0x29, "<f8", valid & ~np.isnan(values))
    if value_type == ValueType.INT64 and pa.types.is_integer(column.type):
        values = column.fill_null(0).to_numpy(zero_copy_only=False)
        return _varints(values, 0x20, valid)
    from feast.type_map import python_values_to_proto_values

    protos = python_values_to_proto_values(column.to_numpy(zero_copy_only=False), value_type)
    return pa.array([p.SerializeToString() for p in protos], pa.binary())


def encode_timestamps(column: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.BinaryArray]:
    """Seconds, nanos and the serialized ``google.protobuf.Timestamp`` of each event time (naive = UTC)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    micros = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_numpy()
    seconds, rest = np.divmod(micros, 1_000_000)
    nanos = rest * 1000
    sec_bytes = _varints(seconds, 0x08, np.ones(len(seconds), dtype=bool))
    nano_bytes = _varints(nanos, 0x10, nanos != 0)
    return seconds, nanos, pc.binary_join_element_wise(sec_bytes, nano_bytes, _EMPTY)


# -- decoding what Redis returns ----------------------------------------------------------------------------
def timestamp_nanos(raw: bytes | None) -> int:
    """Nanoseconds since the epoch of a serialized ``google.protobuf.Timestamp`` (0 when absent)."""
    if not raw:
        return 0
    seconds = nanos = 0
    pos = 0
    while pos < len(raw):
        tag = raw[pos]
        pos += 1
        value = shift = 0
        while True:
            byte = raw[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if tag == 0x08:
            seconds = value
        elif tag == 0x10:
            nanos = value
    return seconds * 1_000_000_000 + nanos


def timestamp_seconds(raw: bytes | None) -> float | None:
    """Seconds since the epoch of a serialized ``google.protobuf.Timestamp`` (None when absent)."""
    return timestamp_nanos(raw) / 1e9 if raw else None


def decode_value(raw: bytes | None):
    """A Feast Value proto to the Python value get_online_features(...).to_dict() gives (None when unset)."""
    if not raw:
        return None
    value = Value.FromString(raw)
    kind = value.WhichOneof("val")
    return None if kind is None or kind == "null_val" else getattr(value, kind)


# -- Feast's own machinery, for what the fast paths do not cover --------------------------------------------
def redis_client(online_store_config):
    """The redis-py client Feast's Redis online store builds from its config (standalone, cluster or
    sentinel, with the connection string's TLS and credentials)."""
    from feast.infra.online_stores.redis import RedisOnlineStore

    return RedisOnlineStore()._get_client(online_store_config)


def arrow_to_feast_rows(table: pa.Table | pa.RecordBatch, view, join_keys: dict) -> list[tuple]:
    """Feast's conversion of Arrow rows to ``(EntityKey, {feature: Value}, event time, created)`` tuples,
    the input of an online store's ``online_write_batch``. ``join_keys`` maps join key to ``ValueType``."""
    from feast.utils import _convert_arrow_to_proto

    return _convert_arrow_to_proto(table, view, join_keys)
