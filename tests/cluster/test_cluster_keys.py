"""The local cluster is real and our keys fit it: one slot per account (buffer) and per controls subject or
merchant (engine/keys.py), and accounts, subjects and merchants spread over every node."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from redis.crc import key_slot

from buffer.keys import account_keys
from buffer.scripts import Scripts
from buffer.state import read_status
from engine import keys
from engine.controls.limits import METHODS
from engine.redis_client import RedisClient, is_cluster
from tests.cluster.local_cluster import LocalCluster
from tests.factories import rand_id, today

BUFFER_DIR = Path(__file__).resolve().parents[2] / "buffer"


async def test_cluster_has_three_masters_covering_all_slots(redis_cluster: LocalCluster,
                                                              cluster_client: RedisClient) -> None:
    assert is_cluster(cluster_client)
    info = await cluster_client.cluster_info()  # type: ignore[union-attr]
    assert info["cluster_state"] == "ok" and int(info["cluster_size"]) == 3
    assert int(info["cluster_slots_assigned"]) == 16384
    assert await cluster_client.ping()


def test_one_account_one_slot_many_accounts_every_node(redis_cluster: LocalCluster) -> None:
    nodes: set[int] = set()
    for _ in range(200):
        keys = account_keys(rand_id("acct")).all()
        assert len({key_slot(k.encode()) for k in keys}) == 1, keys
        nodes.add(redis_cluster.node_of(keys[0]))
    assert nodes == {0, 1, 2}


def test_one_controls_subject_one_slot_subjects_and_buckets_on_every_node(redis_cluster: LocalCluster) -> None:
    """Each check-and-count script touches one subject's keys, and the rate limiter one merchant's bucket:
    each must sit on one slot, and many of them must spread over the cluster."""
    subject_nodes: set[int] = set()
    bucket_nodes: set[int] = set()
    for _ in range(200):
        merchant = rand_id(keys.MERCHANT)
        for customer in (rand_id(keys.CUSTOMER), None):
            k = keys.subject_keys(merchant, customer, today(), "CNY", METHODS)
            admission = rand_id(keys.ADMISSION)
            every = (*k.all(), keys.check_marker(k, admission), keys.release_marker(k, admission))
            assert len({key_slot(key.encode()) for key in every}) == 1, every
            subject_nodes.add(redis_cluster.node_of(k.day))
        bucket_nodes.add(redis_cluster.node_of(keys.rate_bucket_key(merchant)))
    assert subject_nodes == {0, 1, 2} and bucket_nodes == {0, 1, 2}


async def test_scripts_run_on_the_owning_node(redis_cluster: LocalCluster, cluster_client: RedisClient) -> None:
    """Each account's keys land on the node that owns its tag; no key is left untagged."""
    accounts = [rand_id("acct") for _ in range(30)]
    for a in accounts:
        await cluster_client.hset(account_keys(a).state, "probe", 1)
    for a in accounts:
        key = account_keys(a).state
        with redis_cluster.nodes[redis_cluster.node_of(key)].client() as direct:
            assert direct.hget(key, "probe") == b"1"
        await cluster_client.delete(key)


@pytest.mark.parametrize("path", sorted(BUFFER_DIR.glob("*.py")), ids=lambda p: p.name)
def test_buffer_uses_no_keyspace_wide_commands(path: Path) -> None:
    """KEYS / SCAN / FLUSHDB / MULTI-EXEC span slots; the buffer must find its accounts in PostgreSQL
    and never wrap several accounts in one Redis transaction."""
    banned = {"keys", "scan", "scan_iter", "flushdb", "flushall", "multi", "watch", "transaction", "randomkey"}
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = ast.unparse(node.func.value).lower()
        if "redis" not in receiver and "pipe" not in receiver:
            continue  # asyncpg's conn.transaction(), dict.keys() ...
        assert node.func.attr not in banned, f"{path.name}:{node.lineno} calls {ast.unparse(node.func)}"
        for kw in node.keywords:
            if kw.arg == "transaction":
                assert isinstance(kw.value, ast.Constant) and kw.value.value is False, \
                    f"{path.name}:{node.lineno}: a Redis transaction cannot span accounts' slots"


async def test_batched_script_calls_span_masters(redis_cluster: LocalCluster, cluster_client: RedisClient) -> None:
    """read_status batches one script call per account (buffer.scripts.run_scripts): on the cluster
    each goes to its own master, and accounts on all three come back in order."""
    accounts = [rand_id("acct") for _ in range(12)]
    assert len({redis_cluster.node_of(account_keys(a).state) for a in accounts}) >= 2
    rows = await read_status(cluster_client, Scripts(cluster_client), accounts)  # type: ignore[arg-type]
    assert [r.account_id for r in rows] == accounts and not any(r.loaded for r in rows)
