"""Connecting to Redis so that an unreachable server fails fast, and mapping its errors.

A node that cannot reach Redis must learn it within a second and degrade (answer calls with
the fallback), not hang a webhook on retries: hence short timeouts and a single retry, which
only covers a pooled connection that went stale when Redis restarted.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from loopline.state.base import StateUnavailable

T = TypeVar("T")


def connect(
    url: str,
    *,
    socket_timeout: float = 0.5,
    connect_timeout: float = 0.5,
    max_connections: int = 64,
    pool_timeout: float = 10.0,
) -> aioredis.Redis:
    """A client with decoded (str) replies, short timeouts and one immediate retry.

    A burst of more concurrent commands than `max_connections` waits (up to `pool_timeout`)
    for a free connection instead of failing, which redis-py's default pool would do. That
    wait means a busy node, not a Redis outage (which the connect and read timeouts catch
    within a second), so it is long: a burst of 250 webhooks on one node of 2 cores waited
    over 2 s and answered callers with the fallback line. 10 s stays under Twilio's 15 s.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1),
    )
    client: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return client


def dedicated_client(client: aioredis.Redis, *, socket_timeout: float) -> aioredis.Redis:
    """A one-connection client to the same server, for a blocking read that must not hold up
    (or be timed out by) the shared pool; `socket_timeout` must exceed the read's BLOCK."""
    pool = client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs["socket_timeout"] = socket_timeout
    own_pool = aioredis.ConnectionPool(
        connection_class=pool.connection_class, max_connections=1, **kwargs
    )
    dedicated: aioredis.Redis = aioredis.Redis.from_pool(own_pool)
    return dedicated


def require_text_replies(client: aioredis.Redis) -> None:
    if not client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=True")


def text(value: bytes | str) -> str:
    """A reply as str; the clients here decode, this only satisfies the reply's declared type."""
    return value.decode() if isinstance(value, bytes) else value


async def guarded(operation: str, pending: Awaitable[T]) -> T:
    """Await a Redis call; its failure becomes `StateUnavailable` naming only the operation."""
    try:
        return await pending
    except (RedisError, OSError) as exc:
        raise StateUnavailable(
            f"redis unavailable during {operation} ({type(exc).__name__})"
        ) from exc
