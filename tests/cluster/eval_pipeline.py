"""A test-side stand-in for the one fix buffer/ needs to run on Redis Cluster (see the report).

redis-py's ClusterPipeline refuses EVALSHA (``PIPELINE_BLOCKED_COMMANDS``) with a
RedisClusterException, which is not a RedisError. buffer/sink.py (reserve, release, enqueue) and
buffer/state.py (read_status) call registered scripts with ``client=pipe``, so on a cluster every
booking with hot legs raises after its commit. The proposed fix: on a RedisCluster, queue EVAL with
the script text instead; the pipeline splits commands by slot, one round trip per node, and
each script still touches one slot. ``EvalPipelineCluster`` wraps a RedisCluster and does exactly
that, so the rest of the buffer (flusher, recovery, load, ack) can be proven on a real cluster
while the pipelined paths wait for the fix in buffer/. Nothing else is changed.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.commands.core import AsyncScript


class _EvalPipeline:
    def __init__(self, pipe: ClusterPipeline, texts: dict[str, Any]) -> None:
        self._pipe = pipe
        self._texts = texts

    async def __aenter__(self) -> _EvalPipeline:
        await self._pipe.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._pipe.__aexit__(*exc)

    async def evalsha(self, sha: str, numkeys: int, *args: Any) -> _EvalPipeline:
        self._pipe.eval(self._texts[sha], numkeys, *args)
        return self

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        return await self._pipe.execute(raise_on_error=raise_on_error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)


class EvalPipelineCluster:
    """A RedisCluster whose pipelines send registered scripts as EVAL (everything else delegated)."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self._texts: dict[str, Any] = {}

    def register_script(self, script: Any) -> AsyncScript:
        registered = AsyncScript(self, script)  # type: ignore[arg-type]
        self._texts[registered.sha] = script
        return registered

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> _EvalPipeline:
        return _EvalPipeline(self.cluster.pipeline(transaction, shard_hint), self._texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)
