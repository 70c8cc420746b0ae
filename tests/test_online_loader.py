"""The online-store loader writes exactly what Feast writes.

Its column encoders and key layout are resources/feast_redis.py, compared with Feast's own writer and reader in
tests/test_feast_redis.py. Against real Redis (tests/test_hybrid.py, which has the hybrid platform): the
platform's feature views loaded by the loader and by ``FeatureStore.materialize`` compare byte for byte and
read back the same through the Feast SDK.
"""

from datetime import datetime, timedelta

import pyarrow as pa

from resources.online_loader import latest_per_entity


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
