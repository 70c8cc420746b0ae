"""The Redis connection string the platform hands Feast (and through Feast, the online loader and the checks)."""

from feast.infra.online_stores.redis import RedisOnlineStore

from resources.feature_store import _redis_connection_string


def test_redis_urls_become_feast_connection_strings_tls_and_user_included():
    plain = _redis_connection_string("redis://:s3cret@10.0.0.5:6380/2")
    nodes, params = RedisOnlineStore._parse_connection_string(plain)
    assert nodes == [{"host": "10.0.0.5", "port": "6380"}]
    assert params["password"] == "s3cret" and params["db"] == 2 and "ssl" not in params
    assert params["socket_timeout"] == 2 and params["socket_connect_timeout"] == 1
    tls = _redis_connection_string("rediss://app:s3cret@cache.example.com:6379/0")
    nodes, params = RedisOnlineStore._parse_connection_string(tls)
    assert nodes == [{"host": "cache.example.com", "port": "6379"}]
    assert params["ssl"] is True and params["username"] == "app" and params["password"] == "s3cret"
