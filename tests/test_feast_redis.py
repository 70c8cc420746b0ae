"""resources/feast_redis.py holds Feast's Redis layout, built on private Feast helpers. These tests compare its
bytes with what Feast itself writes and reads, so a Feast upgrade that changes the layout or a wrapped helper
fails here, before the loader writes data the SDK cannot read or the endpoint reads the wrong fields.

Feast's own writer and reader (``RedisOnlineStore.online_write_batch`` / ``online_read``) run against an
in-memory stand-in for the Redis client, so no server is needed.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mmh3
import numpy as np
import pyarrow as pa
import pytest
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_versioned_name
from feast.infra.online_stores.redis import RedisOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Null, Value
from feast.repo_config import RepoConfig
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from core import catalog
from feature_repo.repo import build
from resources import feast_redis

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "churn"
IDS = [0, 1, 42, 2**33, 10**12, -7, 2**63 - 1]

# The private Feast helpers resources/feast_redis.py wraps, with the parameters it passes. A rename, a moved
# module or a changed parameter list fails test_wrapped_feast_helpers_keep_their_signatures.
WRAPPED = {
    ("feast.infra.online_stores.helpers", "_mmh3"): ["key"],
    ("feast.infra.online_stores.helpers", "_redis_key"): [
        "project",
        "entity_key",
        "entity_key_serialization_version",
    ],
    ("feast.infra.online_stores.redis", "_versioned_fv_name"): ["table", "config"],
    ("feast.utils", "_convert_arrow_to_proto"): ["table", "feature_view", "join_keys"],
    ("feast.infra.online_stores.redis", "RedisOnlineStore._get_client"): ["self", "online_store_config"],
}


class FakeRedis:
    """The part of redis-py Feast's Redis online store uses: pipelined HMGET, HSET and EXPIRE on hashes."""

    def __init__(self, hashes: dict | None = None):
        self.hashes: dict[bytes, dict[bytes, bytes]] = hashes or {}
        self._replies: list = []

    def pipeline(self, transaction: bool = True):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._replies = []

    def hmget(self, key: bytes, fields, *more):
        fields = [fields, *more] if isinstance(fields, str | bytes) else list(fields)
        stored = self.hashes.get(key, {})
        self._replies.append([stored.get(_bytes(f)) for f in fields])

    def hset(self, key: bytes, mapping: dict):
        self.hashes.setdefault(key, {}).update({_bytes(k): v for k, v in mapping.items()})
        self._replies.append(len(mapping))

    def expire(self, name: bytes, time: int):
        self._replies.append(True)

    def execute(self) -> list:
        replies, self._replies = self._replies, []
        return replies


def _bytes(field: str | bytes) -> bytes:
    return field.encode() if isinstance(field, str) else field  # what Redis stores for a str field


def _config(tmp_path: Path, versioned: bool) -> RepoConfig:
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry={
            "registry_type": "file",
            "path": str(tmp_path / "registry.db"),
            "enable_online_feature_view_versioning": versioned,
        },
        online_store={"type": "redis", "connection_string": "localhost:1"},  # never connected to
        entity_key_serialization_version=3,
        repo_path=str(tmp_path),
    )


def _views(tmp_path: Path, version: int | None):
    objects = build(str(tmp_path / "objects"))
    views = [objects[name] for name in catalog.VIEW_OFFLINE_KEY]
    for view in views:
        view.current_version_number = version
    return views


def _rows(view, seed: int) -> pa.Table:
    """One row per id with every feature of the view: nulls and NaN included, times with and without
    sub-second parts."""
    rng = np.random.default_rng(seed)
    n = len(IDS)
    start = datetime(2026, 3, 1, 12, 0, 0)
    columns = {
        catalog.ENTITY_KEY: pa.array(IDS, pa.int64()),
        catalog.EVENT_TS: pa.array(
            [start + timedelta(days=i, microseconds=int(rng.integers(0, 10**6)) * (i % 2)) for i in range(n)],
            pa.timestamp("us"),
        ),
    }
    for feature in view.features:
        if feature.dtype.to_value_type() == ValueType.INT64:
            values = [int(v) for v in rng.integers(-(2**40), 2**40, n)]
            values[1] = None
            columns[feature.name] = pa.array(values, pa.int64())
        else:
            values = [float(v) for v in rng.normal(0, 1e3, n)]
            values[1], values[2] = None, float("nan")
            columns[feature.name] = pa.array(values, pa.float64())
    return pa.table(columns)


def _feast_rows(view, table: pa.Table) -> list[tuple]:
    return feast_redis.arrow_to_feast_rows(table, view, {catalog.ENTITY_KEY: ValueType.INT64})


def _feast_redis_key(entity_id: int) -> bytes:
    """Feast's public path to a Redis key (RedisOnlineStore's key generation for reads)."""
    entity_key = EntityKey(join_keys=[catalog.ENTITY_KEY], entity_values=[Value(int64_val=entity_id)])
    return serialize_entity_key(entity_key, entity_key_serialization_version=3) + PROJECT.encode()


# -- what Feast writes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("versioned", [False, True], ids=["plain", "versioned"])
def test_feast_writes_the_keys_fields_and_bytes_we_build(tmp_path, versioned):
    config = _config(tmp_path, versioned)
    encoder = feast_redis.EntityKeyEncoder.for_config(catalog.ENTITY_KEY, config)
    for seed, view in enumerate(_views(tmp_path, 2 if versioned else None)):
        table = _rows(view, seed)
        redis = FakeRedis()
        feast_store = RedisOnlineStore()
        feast_store._client = redis  # Feast's writer, with its client replaced by the in-memory one
        feast_store.online_write_batch(config, view, _feast_rows(view, table), progress=None)

        name = feast_redis.versioned_view_name(view, config)
        assert name == compute_versioned_name(view, versioned)
        assert name == (f"{view.name}_v2" if versioned else view.name)
        keys = encoder.encode(np.array(IDS, dtype=np.int64)).to_pylist()
        assert keys == [encoder.key(i) for i in IDS] == [_feast_redis_key(i) for i in IDS]
        assert sorted(redis.hashes) == sorted(keys)

        fields = {f.name: feast_redis.feature_field(name, f.name) for f in view.features}
        for feature, field in fields.items():
            assert field == mmh3.hash(f"{name}:{feature}", signed=False).to_bytes(4, "little")
        assert feast_redis.timestamp_field(name) == f"_ts:{name}".encode()
        _, _, stamps = feast_redis.encode_timestamps(table.column(catalog.EVENT_TS))
        values = {
            f.name: feast_redis.encode_values(table.column(f.name), f.dtype.to_value_type()).to_pylist()
            for f in view.features
        }
        for row, key in enumerate(keys):
            written = redis.hashes[key]
            assert set(written) == {feast_redis.timestamp_field(name), *fields.values()}
            assert written[feast_redis.timestamp_field(name)] == stamps[row].as_py()
            for feature, field in fields.items():
                assert written[field] == values[feature][row], (view.name, feature, row)


# -- what Feast reads --------------------------------------------------------------------------------------
def test_feast_reads_back_what_we_encode_and_we_decode_it_as_feast_does(tmp_path):
    config = _config(tmp_path, versioned=False)
    encoder = feast_redis.EntityKeyEncoder.for_config(catalog.ENTITY_KEY, config)
    for seed, view in enumerate(_views(tmp_path, None)):
        table = _rows(view, seed)
        name = feast_redis.versioned_view_name(view, config)
        _, _, stamps = feast_redis.encode_timestamps(table.column(catalog.EVENT_TS))
        hashes = {}
        for row, entity_id in enumerate(IDS):  # the hashes the online loader writes
            fields = {feast_redis.timestamp_field(name): stamps[row].as_py()}
            for f in view.features:
                fields[feast_redis.feature_field(name, f.name)] = feast_redis.encode_values(
                    table.column(f.name).slice(row, 1), f.dtype.to_value_type()
                )[0].as_py()
            hashes[encoder.key(entity_id)] = fields
        feast_store = RedisOnlineStore()
        feast_store._client = FakeRedis(hashes)
        entity_keys = [row[0] for row in _feast_rows(view, table)]
        read = feast_store.online_read(config, view, entity_keys)

        for entity_id, (event_time, protos) in zip(IDS, read, strict=True):
            stored = hashes[encoder.key(entity_id)]
            raw_ts = stored[feast_redis.timestamp_field(name)]
            assert feast_redis.timestamp_seconds(raw_ts) == pytest.approx(event_time.timestamp(), abs=1e-6)
            assert feast_redis.timestamp_nanos(raw_ts) == Timestamp.FromString(raw_ts).ToNanoseconds()
            for f in view.features:
                ours = feast_redis.decode_value(stored[feast_redis.feature_field(name, f.name)])
                assert ours == feast_value_type_to_python_type(protos[f.name], f.dtype.to_value_type())
        # and the inputs come back: nulls and NaN as None
        field = feast_redis.feature_field(name, view.features[0].name)
        expected = table.column(view.features[0].name).to_pylist()
        got = [feast_redis.decode_value(hashes[encoder.key(i)][field]) for i in IDS]
        assert got == [None if v is None or v != v else v for v in expected]


def test_value_decoding_matches_feasts_conversion():
    for value in (
        Value(double_val=1.5),
        Value(double_val=-0.0),
        Value(int64_val=-(2**63)),
        Value(int64_val=0),
        Value(string_val="résumé"),
        Value(bool_val=True),
        Value(),
    ):
        assert feast_redis.decode_value(value.SerializeToString()) == feast_value_type_to_python_type(value)
    # an absent field (Redis nil) is a missing value; a null Value too (Feast's converter gives its enum, 0)
    assert feast_redis.decode_value(None) is None
    assert feast_redis.decode_value(b"") is None
    assert feast_redis.decode_value(Value(null_val=Null.NULL).SerializeToString()) is None
    assert feast_redis.timestamp_seconds(None) is None and feast_redis.timestamp_nanos(None) == 0


# -- the column encoders, value by value -------------------------------------------------------------------
def _feast_bytes(column: pa.Array, value_type) -> list[bytes]:
    protos = python_values_to_proto_values(column.to_numpy(zero_copy_only=False), value_type)
    return [p.SerializeToString() for p in protos]


def test_double_and_int64_values_serialize_like_feast():
    rng = np.random.default_rng(3)
    doubles = pa.array(
        [1.5, None, float("nan"), 0.0, -0.0, -2.25, 1e300, 5e-324, *rng.normal(0, 1e6, 500)], pa.float64()
    )
    assert feast_redis.encode_values(doubles, ValueType.DOUBLE).to_pylist() == _feast_bytes(
        doubles, ValueType.DOUBLE
    )
    # with a null, Feast sees the column as float64 (so only values a double holds exactly)
    ints = pa.array([0, 1, 127, 128, 300, -1, None, *rng.integers(-(2**40), 2**40, 500)], pa.int64())
    assert feast_redis.encode_values(ints, ValueType.INT64).to_pylist() == _feast_bytes(ints, ValueType.INT64)
    no_nulls = pa.array([-(2**63), 2**63 - 1, 2**35, *rng.integers(-(10**6), 10**6, 1000)], pa.int64())
    assert feast_redis.encode_values(no_nulls, ValueType.INT64).to_pylist() == _feast_bytes(
        no_nulls, ValueType.INT64
    )


def test_other_types_fall_back_to_feasts_converter():
    strings = pa.array(["a", None, "résumé"])
    assert feast_redis.encode_values(strings, ValueType.STRING).to_pylist() == _feast_bytes(
        strings, ValueType.STRING
    )


def test_timestamps_serialize_like_feast():
    moments = [datetime(2026, 1, 1), datetime(2026, 11, 30, 13, 5, 7, 123456), datetime(1970, 1, 1, 0, 0, 1)]
    seconds, nanos, encoded = feast_redis.encode_timestamps(pa.array(moments, pa.timestamp("us")))
    for moment, s, n, raw in zip(moments, seconds, nanos, encoded.to_pylist(), strict=True):
        ts = Timestamp()
        ts.FromDatetime(moment.replace(tzinfo=UTC))
        assert raw == ts.SerializeToString()
        assert (s, n) == (ts.seconds, ts.nanos)
        assert feast_redis.timestamp_nanos(raw) == ts.seconds * 10**9 + ts.nanos


# -- the wrapped helpers -----------------------------------------------------------------------------------
def test_wrapped_feast_helpers_keep_their_signatures():
    for (module, name), params in WRAPPED.items():
        target = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
        assert list(inspect.signature(target).parameters) == params, f"{module}.{name}"


def _private_feast_imports(path: Path) -> set[tuple[str, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "feast"
        for alias in node.names
        if alias.name.startswith("_")
    }


def test_only_feast_redis_touches_the_wrapped_helpers():
    """Every private Feast helper the module imports is in WRAPPED (so its signature is checked), and no
    other module of ours imports one of them or calls Feast's ``_get_client``."""
    module = Path(feast_redis.__file__)
    wrapped = {(m, n.split(".")[-1]) for m, n in WRAPPED}
    assert _private_feast_imports(module) <= wrapped
    names = {n for _, n in wrapped}
    for package in (
        "core",
        "expectations",
        "feature_repo",
        "resources",
        "serving",
        "hybrid_assets",
        "hybrid_cli",
    ):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == module:
                continue
            where = path.relative_to(ROOT)
            assert not {n for _, n in _private_feast_imports(path)} & names, where
            assert "._get_client(" not in path.read_text(), where


def test_redis_client_is_feasts_client_for_the_config():
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig

    client = feast_redis.redis_client(
        RedisOnlineStoreConfig(connection_string="localhost:6399,db=2")
    )  # does not connect
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], int(kwargs["port"]), int(kwargs["db"])) == ("localhost", 6399, 2)
