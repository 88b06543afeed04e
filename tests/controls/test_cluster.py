"""The gate on a real 3-master Redis Cluster: each subject's keys share one slot (no CROSSSLOT), the
customer and the merchant live on their own nodes, and limits hold under concurrency and after a rebuild."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from redis.asyncio.cluster import RedisCluster

from engine.controls import Attempt, ControlGate, LimitExceeded, keys
from engine.controls.limits import LimitRule
from tests.cluster.conftest import cluster_client, redis_cluster
from tests.controls.test_gate_limits import set_limits
from tests.factories import rand_id, today

__all__ = ["cluster_client", "redis_cluster"]


async def test_limits_hold_on_a_redis_cluster(pool: asyncpg.Pool, cluster_client: Any) -> None:
    assert isinstance(cluster_client, RedisCluster)
    gate = ControlGate(pool, cluster_client, today=today, blocklist_secret="test", config_ttl_s=0.0)
    merchant, customer = rand_id("mch"), rand_id("cus")
    await set_limits(pool, merchant, LimitRule("customer", "daily", "*", "*", 2_000, None),
                     LimitRule("merchant", "daily", "*", "*", None, 30))
    slots = {cluster_client.keyslot(k) for k in keys.subject_keys(merchant, customer, today()).all()}
    assert len(slots) == 1
    results = await asyncio.gather(*(gate.admit(Attempt("payment", "wallet", merchant, customer, 100, "CNY"))
                                     for _ in range(60)), return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    refusals = {type(r).__name__ for r in results if r not in admitted}
    assert (len(admitted), refusals) == (20, {"LimitExceeded"})
    for subject in ((merchant, customer), (merchant, None)):
        for key in keys.subject_keys(*subject, today()).all():
            await cluster_client.delete(key)
    others = await asyncio.gather(*(gate.admit(Attempt("payment", "channel", merchant, None, 5, "CNY"))
                                    for _ in range(30)), return_exceptions=True)
    assert sum(1 for r in others if not isinstance(r, BaseException)) == 10  # 30 per day, 20 used before
    await admitted[0].release()
    with pytest.raises(LimitExceeded):
        await gate.admit(Attempt("payment", "wallet", merchant, customer, 101, "CNY"))
    await gate.admit(Attempt("payment", "wallet", merchant, customer, 100, "CNY"))
