"""One HTTP exchange with a channel, with aiohttp's failures translated at this edge.

The line between `ChannelUnavailable` and `ChannelTimeout` is whether the request may have
reached the channel: a refused connection changed nothing, a read that never finished might
have created an order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy

from channels.errors import ChannelTimeout, ChannelUnavailable

logger = logging.getLogger(__name__)

# Bigger answers are not something a channel API sends; statements stay well below.
RESPONSE_BYTES_MAX = 32 * 1024 * 1024


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def exchange(
    session: aiohttp.ClientSession,
    channel: str,
    operation: str,
    method: str,
    url: str,
    timeout_s: float,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> RawAnswer:
    """Send one request and read the whole answer within `timeout_s`.

    Raises ChannelUnavailable when the connection could not be made and ChannelTimeout
    when the outcome is unknown (timeout or connection lost after sending).
    """
    try:
        async with session.request(
            method, url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > RESPONSE_BYTES_MAX:
                    raise ChannelUnavailable(channel, operation, response.status, "answer too large")
                chunks.append(chunk)
            return RawAnswer(response.status, response.headers, b"".join(chunks))
    except aiohttp.ClientConnectorError as error:
        raise ChannelUnavailable(channel, operation, None, f"cannot connect: {error.os_error}") from error
    except TimeoutError as error:
        raise ChannelTimeout(channel, operation, timeout_s) from error
    except aiohttp.ClientError as error:
        logger.info("channel exchange broken", extra={"channel": channel, "operation": operation})
        raise ChannelTimeout(channel, operation, timeout_s, f"connection lost: {error!r}") from error
