"""What is particular to the Redis store: failing fast, key expiry, prefixes, no numbers in keys."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from loopline.domain.agents import Presence
from loopline.domain.calls import CallContext, Caller, CallState, QueuedCall, TimeFacts
from loopline.domain.clock import FakeClock
from loopline.state.base import StateUnavailable
from loopline.state.redis import RedisStateStore

UNUSED_PORT_URL = "redis://127.0.0.1:1/0"
NUMBER = "+15551230000"


def call_state(clock: FakeClock) -> CallState:
    now = clock.now()
    context = CallContext(
        call_id="c1",
        caller=Caller(number=NUMBER, valid=True),
        dialed="+15559870000",
        time=TimeFacts(hour=15, weekday=0, in_business_hours=True, iso=now.isoformat()),
    )
    return CallState(call_id="c1", provider_call_id="CA1", context=context, received_at=now)


async def test_unreachable_redis_is_unavailable_quickly(clock: FakeClock) -> None:
    store = RedisStateStore.from_url(UNUSED_PORT_URL)
    operations = [
        store.ping(),
        store.register_agent("ana", 1),
        store.reserve("c1", ["ana"], 20, clock.now()),
        store.put_call(call_state(clock)),
        store.get_call("c1"),
        store.enqueue(QueuedCall(call_id="c1", queue="q", priority=0, enqueued_at=clock.now())),
        store.set_last_agent(NUMBER, "ana"),
        store.claim_once("k", 5),
    ]
    started = time.monotonic()
    try:
        for operation in operations:
            with pytest.raises(StateUnavailable) as info:
                await operation
            assert NUMBER not in str(info.value)
            assert "CA1" not in str(info.value)
    finally:
        await store.close()
    assert time.monotonic() - started < 2.0


async def test_a_silent_server_times_out_quickly() -> None:
    # A listener that accepts and never answers: the socket timeout, not a hang.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStateStore.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.2)
    started = time.monotonic()
    try:
        with pytest.raises(StateUnavailable):
            await store.ping()
    finally:
        await store.close()
        server.close()
        await server.wait_closed()
    assert time.monotonic() - started < 2.0


async def test_live_call_keys_expire_and_hide_nothing_personal(
    redis_clean: str, clock: FakeClock
) -> None:
    store = RedisStateStore.from_url(redis_clean, prefix="t:", call_ttl_s=3600)
    raw = aioredis.from_url(redis_clean, decode_responses=True)
    try:
        await store.put_call(call_state(clock))
        await store.set_last_agent(NUMBER, "ana")
        for key in ["t:call:c1", "t:pcall:CA1"]:
            assert 3_590_000 < await raw.pttl(key) <= 3_600_000
        keys = [k async for k in raw.scan_iter("t:*")]
        assert not [k for k in keys if "5551230000" in k]
        assert any(k.startswith("t:last-agent:") for k in keys)
    finally:
        await store.close()
        await raw.aclose()


async def test_prefixes_keep_deployments_apart(redis_clean: str, clock: FakeClock) -> None:
    one = RedisStateStore.from_url(redis_clean, prefix="one:")
    two = RedisStateStore.from_url(redis_clean, prefix="two:")
    try:
        await one.register_agent("ana", 1)
        await one.set_presence("ana", Presence.AVAILABLE, clock.now())
        assert await two.get_agent("ana") is None
        assert await two.reserve("c1", ["ana"], 20, clock.now()) is None
        assert await one.reserve("c1", ["ana"], 20, clock.now()) == "ana"
        assert await two.list_agents() == []
    finally:
        await one.close()
        await two.close()


async def test_a_client_without_decoded_replies_is_refused(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        with pytest.raises(ValueError):
            RedisStateStore(client)
    finally:
        await client.aclose()


async def test_a_burst_larger_than_the_pool_waits_for_connections(
    redis_clean: str, clock: FakeClock
) -> None:
    store = RedisStateStore.from_url(redis_clean, prefix="t:", max_connections=4)
    try:
        await store.register_agent("ana", 20)
        await store.set_presence("ana", Presence.AVAILABLE, clock.now())
        results = await asyncio.gather(
            *(store.reserve(f"c{n}", ["ana"], 20, clock.now()) for n in range(200))
        )
        assert results.count("ana") == 20
    finally:
        await store.close()
