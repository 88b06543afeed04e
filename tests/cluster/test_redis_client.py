"""engine.redis_client: which client a URL (and PAYENGINE_REDIS_CLUSTER) selects."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from engine.redis_client import RedisUrlError, create_redis, parse_redis_url, redis_from_settings
from engine.settings import Settings


@pytest.mark.parametrize(("url", "cluster", "expected"), [
    ("redis://127.0.0.1:6379/0", False, ("redis://127.0.0.1:6379/0", False)),
    ("unix:///tmp/redis.sock", False, ("unix:///tmp/redis.sock", False)),
    ("redis+cluster://10.0.0.5:7000", False, ("redis://10.0.0.5:7000", True)),
    ("rediss+cluster://user:pw@r.example:7000", False, ("rediss://user:pw@r.example:7000", True)),
    ("redis://10.0.0.5:7000", True, ("redis://10.0.0.5:7000", True)),
])
def test_parse(url: str, cluster: bool, expected: tuple[str, bool]) -> None:
    target = parse_redis_url(url, cluster)
    assert (target.url, target.cluster) == expected


@pytest.mark.parametrize(("url", "cluster"), [("unix:///tmp/r.sock", True), ("http://x:1", False), ("redis", False)])
def test_refused(url: str, cluster: bool) -> None:
    with pytest.raises(RedisUrlError):
        parse_redis_url(url, cluster)


async def test_client_types() -> None:
    plain = create_redis("unix:///tmp/none.sock", max_connections=7)
    assert type(plain) is aioredis.Redis and plain.connection_pool.max_connections == 7
    await plain.aclose()
    settings = Settings.from_env({"PAYENGINE_REDIS_CLUSTER": "1", "PAYENGINE_REDIS_URL": "redis://127.0.0.1:1"})
    assert settings.redis_cluster
    cluster = redis_from_settings(settings, settings.redis_url)
    assert isinstance(cluster, RedisCluster)  # nothing connects until the first command
    await cluster.aclose()
    assert Settings.from_env({"PAYENGINE_REDIS_URL": "redis+cluster://h:7000"}).redis_cluster is False
