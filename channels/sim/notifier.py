"""Delivers a simulator's notifies to the merchant, retrying on the channel's schedule.

Real channels keep calling until the merchant answers exactly as they expect, so a
merchant that answers 200 with the wrong body is retried just like one that is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

logger = logging.getLogger(__name__)

# Deliveries in flight at once; more wait, so a burst of payments cannot open 10k sockets.
DELIVERIES_CONCURRENT_MAX = 64
ATTEMPT_LOG_MAX = 10_000


@dataclass(frozen=True)
class NotifyMessage:
    """A fresh message per attempt: channels re-sign every retry with a new timestamp."""

    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class NotifyAttempt:
    notify_id: str
    attempt: int
    http_status: int | None
    acked: bool


class Notifier:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        schedule_s: tuple[float, ...],
        timeout_s: float,
    ) -> None:
        self._session = session
        self._schedule_s = schedule_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._slots = asyncio.Semaphore(DELIVERIES_CONCURRENT_MAX)
        self._tasks: set[asyncio.Task[bool]] = set()
        self.attempts: deque[NotifyAttempt] = deque(maxlen=ATTEMPT_LOG_MAX)

    def send(
        self,
        notify_id: str,
        url: str,
        build: Callable[[], NotifyMessage],
        is_ack: Callable[[int, bytes], bool],
    ) -> asyncio.Task[bool]:
        """Start delivering in the background; the task ends True once acked, False when given up."""
        task = asyncio.create_task(self._deliver(notify_id, url, build, is_ack), name=f"notify-{notify_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _deliver(
        self,
        notify_id: str,
        url: str,
        build: Callable[[], NotifyMessage],
        is_ack: Callable[[int, bytes], bool],
    ) -> bool:
        for attempt, delay_s in enumerate(self._schedule_s, start=1):
            await asyncio.sleep(delay_s)
            async with self._slots:
                answer = await self._post(url, build())
            acked = answer is not None and is_ack(*answer)
            http_status = None if answer is None else answer[0]
            self.attempts.append(NotifyAttempt(notify_id, attempt, http_status, acked))
            if acked:
                return True
            logger.info(
                "notify not acked",
                extra={"notify_id": notify_id, "attempt": attempt, "http_status": http_status},
            )
        logger.warning("notify given up", extra={"notify_id": notify_id})
        return False

    async def _post(self, url: str, message: NotifyMessage) -> tuple[int, bytes] | None:
        try:
            async with self._session.post(
                url, data=message.body, headers=message.headers, timeout=self._timeout
            ) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.info("notify delivery failed", extra={"url": url, "error": repr(error)})
            return None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
