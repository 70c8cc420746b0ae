"""The online-store loader writes exactly what Feast writes.

Unit tests compare each column encoder with Feast's own serialization (no server needed). Against real
Redis (tests/test_hybrid.py, which has the hybrid platform): the platform's feature views loaded by the loader
and by ``FeatureStore.materialize`` compare byte for byte and read back the same through the Feast SDK.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp

from core import catalog
from resources.online_loader import (
    EntityKeyEncoder,
    encode_timestamps,
    encode_values,
    latest_per_entity,
    timestamp_nanos,
)


def _feast_bytes(column: pa.Array, value_type) -> list[bytes]:
    protos = python_values_to_proto_values(column.to_numpy(zero_copy_only=False), value_type)
    return [p.SerializeToString() for p in protos]


def test_double_and_int64_values_serialize_like_feast():
    rng = np.random.default_rng(3)
    doubles = pa.array(
        [1.5, None, float("nan"), 0.0, -0.0, -2.25, 1e300, 5e-324, *rng.normal(0, 1e6, 500)], pa.float64()
    )
    assert encode_values(doubles, ValueType.DOUBLE).to_pylist() == _feast_bytes(doubles, ValueType.DOUBLE)
    # with a null, Feast sees the column as float64 (so only values a double holds exactly)
    ints = pa.array([0, 1, 127, 128, 300, -1, None, *rng.integers(-(2**40), 2**40, 500)], pa.int64())
    assert encode_values(ints, ValueType.INT64).to_pylist() == _feast_bytes(ints, ValueType.INT64)
    no_nulls = pa.array([-(2**63), 2**63 - 1, 2**35, *rng.integers(-(10**6), 10**6, 1000)], pa.int64())
    assert encode_values(no_nulls, ValueType.INT64).to_pylist() == _feast_bytes(no_nulls, ValueType.INT64)


def test_other_types_fall_back_to_feasts_converter():
    strings = pa.array(["a", None, "résumé"])
    assert encode_values(strings, ValueType.STRING).to_pylist() == _feast_bytes(strings, ValueType.STRING)


def test_timestamps_and_entity_keys_serialize_like_feast():
    moments = [datetime(2026, 1, 1), datetime(2026, 11, 30, 13, 5, 7, 123456), datetime(1970, 1, 1, 0, 0, 1)]
    seconds, nanos, encoded = encode_timestamps(pa.array(moments, pa.timestamp("us")))
    for moment, s, n, raw in zip(moments, seconds, nanos, encoded.to_pylist(), strict=True):
        ts = Timestamp()
        ts.FromDatetime(moment.replace(tzinfo=UTC))
        assert raw == ts.SerializeToString()
        assert (s, n) == (ts.seconds, ts.nanos)
        assert timestamp_nanos(raw) == ts.seconds * 10**9 + ts.nanos
    ids = np.array([0, 1, 42, 2**33, 10**12, -7], dtype=np.int64)
    ours = EntityKeyEncoder(catalog.ENTITY_KEY, "churn", 3).encode(ids).to_pylist()
    feast = [
        _redis_key(
            "churn", EntityKey(join_keys=[catalog.ENTITY_KEY], entity_values=[Value(int64_val=int(i))]), 3
        )
        for i in ids
    ]
    assert ours == feast


def test_latest_row_per_entity_wins():
    t0 = datetime(2026, 3, 1)
    table = pa.table(
        {
            "customer_id": [1, 2, 1, 3, 2],
            "event_timestamp": [t0, t0, t0 + timedelta(days=7), t0, t0 - timedelta(days=7)],
            "x": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    latest = latest_per_entity(table, "customer_id", "event_timestamp").to_pydict()
    assert dict(zip(latest["customer_id"], latest["x"], strict=True)) == {1: 3.0, 2: 2.0, 3: 4.0}
