"""run_scripts after Redis forgot its scripts: refused calls are retried once, calls that ran are not."""

from __future__ import annotations

import redis.asyncio as aioredis

from buffer.scripts import run_scripts
from tests.factories import rand_id

COUNTER = "return redis.call('INCR', KEYS[1])"


async def test_noscript_calls_are_loaded_and_run_exactly_once(redis_client: aioredis.Redis) -> None:
    script = redis_client.register_script(COUNTER)
    keys = [f"pe-test:{{{rand_id('k')}}}:n" for _ in range(3)]
    await redis_client.script_flush()
    results = await run_scripts(redis_client, [(script, [k], []) for k in keys])
    assert results == [1, 1, 1]
    again = await run_scripts(redis_client, [(script, [k], []) for k in keys])  # cached now: one round trip
    assert again == [2, 2, 2]
    assert [int(await redis_client.get(k)) for k in keys] == [2, 2, 2]
    await redis_client.delete(*keys)
