"""One suite for both event buses (memory and Redis streams), then what is particular to each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from loopline.domain.agents import Presence
from loopline.domain.clock import FakeClock
from loopline.domain.events import AgentStateChanged, CallEnded, Event
from loopline.state.base import EventBus, StateUnavailable, Subscription
from loopline.state.encoding import parse_event_id
from loopline.state.memory import MemoryEventBus
from loopline.state.redis import RedisEventBus
from loopline.state.redis_bus import stream_entries

BusFactory = Callable[..., EventBus]


def ended(n: int, clock: FakeClock) -> CallEnded:
    return CallEnded(call_id=f"c{n}", at=clock.now(), reason="completed", duration_s=float(n))


async def take(sub: Subscription, count: int) -> list[tuple[str, Event]]:
    got: list[tuple[str, Event]] = []
    async with asyncio.timeout(5):
        async for item in sub:
            got.append(item)
            if len(got) == count:
                break
    return got


async def test_every_subscriber_gets_every_event_in_order(bus: EventBus, clock: FakeClock) -> None:
    async with bus.subscribe() as a, bus.subscribe() as b:
        ids = [await bus.publish(ended(n, clock)) for n in range(5)]
        got_a, got_b = await take(a, 5), await take(b, 5)
    assert [i for i, _ in got_a] == [i for i, _ in got_b] == ids
    assert [e.call_id for _, e in got_a] == [f"c{n}" for n in range(5)]
    assert got_a[0][1] == ended(0, clock)
    assert ids == sorted(ids, key=parse_event_id)
    assert len(set(ids)) == 5


async def test_events_round_trip_with_their_type(bus: EventBus, clock: FakeClock) -> None:
    event = AgentStateChanged(agent_id="ana", presence=Presence.BUSY, load=2, at=clock.now())
    async with bus.subscribe() as sub:
        await bus.publish(event)
        [(_, got)] = await take(sub, 1)
    assert isinstance(got, AgentStateChanged)
    assert got == event


async def test_a_subscriber_sees_only_what_follows_it(bus: EventBus, clock: FakeClock) -> None:
    await bus.publish(ended(0, clock))
    async with bus.subscribe() as sub:
        await bus.publish(ended(1, clock))
        [(_, got)] = await take(sub, 1)
    assert got.call_id == "c1"


async def test_replay_after_an_id_then_live(bus: EventBus, clock: FakeClock) -> None:
    ids = [await bus.publish(ended(n, clock)) for n in range(4)]
    async with bus.subscribe(after=ids[1]) as sub:
        await bus.publish(ended(4, clock))
        got = await take(sub, 3)
    assert [e.call_id for _, e in got] == ["c2", "c3", "c4"]
    assert [i for i, _ in got][:2] == ids[2:]


async def test_a_group_delivers_each_event_to_exactly_one_member(
    make_bus: BusFactory, clock: FakeClock
) -> None:
    node_a, node_b = make_bus(batch=4), make_bus(batch=4)
    total = 40
    seen: dict[str, list[str]] = {"a": [], "b": []}
    done = asyncio.Event()
    subs = {"a": node_a.subscribe(group="records"), "b": node_b.subscribe(group="records")}

    async def consume(name: str) -> None:
        async for event_id, _ in subs[name]:
            seen[name].append(event_id)
            if len(seen["a"]) + len(seen["b"]) >= total:
                done.set()
            await asyncio.sleep(0)  # let the other member take its share

    async with asyncio.TaskGroup() as tasks:
        for name in subs:
            tasks.create_task(consume(name), name=f"consumer-{name}")
        await asyncio.sleep(0.05)  # both members have joined
        ids = [await node_a.publish(ended(n, clock)) for n in range(total)]
        async with asyncio.timeout(10):
            await done.wait()
        for sub in subs.values():
            await sub.close()  # ends both consumers, blocked or not
    delivered = seen["a"] + seen["b"]
    assert sorted(delivered, key=parse_event_id) == ids
    assert len(set(delivered)) == total


async def test_a_group_keeps_events_until_a_member_comes(
    make_bus: BusFactory, clock: FakeClock
) -> None:
    bus = make_bus()
    first = bus.subscribe(group="records")
    async with first:
        await bus.publish(ended(0, clock))
        [(id0, _)] = await take(first, 1)
    # Nobody in the group now; these wait for the next member.
    await bus.publish(ended(1, clock))
    await bus.publish(ended(2, clock))
    async with bus.subscribe(group="records") as later:
        got = await take(later, 2)
    assert [e.call_id for _, e in got] == ["c1", "c2"]
    assert id0 not in [i for i, _ in got]


async def test_a_new_group_starts_with_what_the_bus_still_holds(
    bus: EventBus, clock: FakeClock
) -> None:
    await bus.publish(ended(0, clock))
    await bus.publish(ended(1, clock))
    async with bus.subscribe(group="late-writer") as sub:
        await bus.publish(ended(2, clock))
        got = await take(sub, 3)
    assert [e.call_id for _, e in got] == ["c0", "c1", "c2"]


@pytest.mark.parametrize("group", [None, "records"])
async def test_next_batch_takes_what_is_ready_up_to_the_limit(
    bus: EventBus, clock: FakeClock, group: str | None
) -> None:
    async with bus.subscribe(group=group) as sub:
        ids = [await bus.publish(ended(n, clock)) for n in range(5)]
        await asyncio.sleep(0.1)  # the Redis reader has fetched them all
        async with asyncio.timeout(5):
            batches = [await sub.next_batch(3), await sub.next_batch(3)]
    assert [len(b) for b in batches] == [3, 2]
    assert [i for b in batches for i, _ in b] == ids
    assert [e.call_id for b in batches for _, e in b] == [f"c{n}" for n in range(5)]


async def test_next_batch_waits_for_one_and_is_empty_after_close(
    bus: EventBus, clock: FakeClock
) -> None:
    sub = bus.subscribe(group="records")
    await sub.__aenter__()
    waiting = asyncio.create_task(sub.next_batch(10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await bus.publish(ended(0, clock))
    async with asyncio.timeout(5):
        [(_, event)] = await waiting
    assert event.call_id == "c0"
    await sub.close()
    assert await sub.next_batch(10) == []


@pytest.mark.parametrize("group", [None, "records"])
async def test_a_subscriber_gets_only_the_types_it_asked_for(
    bus: EventBus, clock: FakeClock, group: str | None
) -> None:
    state = AgentStateChanged(agent_id="ana", presence=Presence.BUSY, load=1, at=clock.now())
    async with (
        bus.subscribe(group=group, types={"call.ended"}) as ended_only,
        bus.subscribe() as everything,
    ):
        ids = []
        for n in range(3):
            ids.append(await bus.publish(state))
            ids.append(await bus.publish(ended(n, clock)))
        got = await take(ended_only, 3)
        all_of_it = await take(everything, 6)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await anext(aiter(ended_only))
    assert [e.call_id for _, e in got] == ["c0", "c1", "c2"]
    assert [i for i, _ in got] == ids[1::2]
    assert len(all_of_it) == 6


async def test_a_typed_group_replays_only_its_types(bus: EventBus, clock: FakeClock) -> None:
    state = AgentStateChanged(agent_id="ana", presence=Presence.BUSY, load=1, at=clock.now())
    await bus.publish(state)
    await bus.publish(ended(0, clock))
    async with bus.subscribe(group="late", types=["call.ended"]) as sub:
        [(_, event)] = await take(sub, 1)
    assert event.call_id == "c0"


async def test_close_ends_a_blocked_reader_promptly(bus: EventBus) -> None:
    for group in [None, "records"]:
        sub = bus.subscribe(group=group)
        await sub.__aenter__()
        got: list[object] = []

        async def read(s: Subscription = sub, into: list[object] = got) -> None:
            async for item in s:
                into.append(item)

        reader = asyncio.create_task(read(), name="blocked-reader")
        await asyncio.sleep(0.05)
        async with asyncio.timeout(0.5):
            await sub.close()
            await reader
        assert got == []


async def test_closing_twice_and_iterating_after_close(bus: EventBus, clock: FakeClock) -> None:
    sub = bus.subscribe()
    await sub.close()
    await sub.close()
    await bus.publish(ended(0, clock))
    assert [item async for item in sub] == []


async def test_publish_after_close_is_unavailable(bus: EventBus, clock: FakeClock) -> None:
    await bus.close()
    with pytest.raises(StateUnavailable):
        await bus.publish(ended(0, clock))


# -- memory only ---------------------------------------------------------------------------


async def test_memory_slow_subscriber_loses_its_oldest_and_counts_them(clock: FakeClock) -> None:
    bus = MemoryEventBus(queue_size=3)
    slow = bus.subscribe()
    async with bus.subscribe() as fast:
        for n in range(5):
            await bus.publish(ended(n, clock))
            [(_, got)] = await take(fast, 1)
            assert got.call_id == f"c{n}"
    got_slow = await take(slow, 3)
    assert [e.call_id for _, e in got_slow] == ["c2", "c3", "c4"]
    assert getattr(slow, "dropped", None) == 2
    assert bus.dropped == 2
    await bus.close()


async def test_memory_replay_is_limited_to_the_history(clock: FakeClock) -> None:
    bus = MemoryEventBus(history=3)
    for n in range(6):
        await bus.publish(ended(n, clock))
    async with bus.subscribe(after="1-0") as sub:
        got = await take(sub, 3)
    assert [i for i, _ in got] == ["4-0", "5-0", "6-0"]
    await bus.close()


async def test_memory_group_member_hands_back_what_it_did_not_read(clock: FakeClock) -> None:
    bus = MemoryEventBus()
    a = bus.subscribe(group="g")
    b = bus.subscribe(group="g")
    for n in range(4):
        await bus.publish(ended(n, clock))
    await a.close()  # a held c0 and c2, unread
    got = await take(b, 4)
    assert sorted(str(e.call_id) for _, e in got) == ["c0", "c1", "c2", "c3"]
    await bus.close()


@pytest.mark.parametrize("bad", ["x", "1-x", "-1", ""])
async def test_memory_bad_after_id_is_refused(bad: str) -> None:
    bus = MemoryEventBus()
    with pytest.raises(ValueError):
        bus.subscribe(after=bad)
    await bus.close()


# -- Redis only ----------------------------------------------------------------------------


async def test_redis_pending_events_of_a_gone_member_are_taken_over(
    redis_clean: str, clock: FakeClock
) -> None:
    crashed = RedisEventBus.from_url(redis_clean, prefix="t:", claim_idle_s=0.05, batch=10)
    survivor = RedisEventBus.from_url(redis_clean, prefix="t:", claim_idle_s=0.05)
    try:
        ids = [await crashed.publish(ended(n, clock)) for n in range(3)]
        sub = crashed.subscribe(group="records")
        [(first_id, _)] = await take(sub, 1)
        # Gone while handling c0, holding c1 and c2 read but not handed out.
        await sub.close()
        await asyncio.sleep(0.1)
        async with survivor.subscribe(group="records") as other:
            got = await take(other, 3)
        assert first_id == ids[0]
        assert sorted((i for i, _ in got), key=parse_event_id) == ids
    finally:
        await crashed.close()
        await survivor.close()


async def test_redis_acknowledged_events_are_not_delivered_again(
    redis_clean: str, clock: FakeClock
) -> None:
    # Takeover is off for the test's span (its own reads must not count as a dead member's):
    # what is checked is that acknowledged entries never come back.
    bus = RedisEventBus.from_url(redis_clean, prefix="t:", claim_idle_s=30.0)
    try:
        for n in range(3):
            await bus.publish(ended(n, clock))
        async with bus.subscribe(group="records") as sub:
            await take(sub, 3)
            # Asking for more acknowledges the three; nothing else arrives.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await anext(aiter(sub))
        async with bus.subscribe(group="records") as again:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await anext(aiter(again))
    finally:
        await bus.close()


async def test_redis_a_batch_is_acknowledged_when_the_next_is_asked_for(
    redis_clean: str, clock: FakeClock
) -> None:
    bus = RedisEventBus.from_url(redis_clean, prefix="t:", claim_idle_s=30.0)
    try:
        for n in range(3):
            await bus.publish(ended(n, clock))
        async with bus.subscribe(group="records") as sub:
            got: list[tuple[str, Event]] = []
            async with asyncio.timeout(5):
                while len(got) < 3:
                    got.extend(await sub.next_batch(10))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await sub.next_batch(10)
        async with bus.subscribe(group="records") as again:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await again.next_batch(10)
    finally:
        await bus.close()


async def test_redis_passed_over_types_are_settled_and_old_entries_still_filtered(
    redis_clean: str, clock: FakeClock
) -> None:
    bus = RedisEventBus.from_url(redis_clean, prefix="t:", claim_idle_s=30.0)
    try:
        state = AgentStateChanged(agent_id="ana", presence=Presence.BUSY, at=clock.now())
        await bus.publish(state)
        # Written by a node without the "t" field: parsed, then passed over all the same.
        await bus.client.xadd("t:events", {"e": state.model_dump_json()})
        await bus.publish(ended(0, clock))
        async with bus.subscribe(group="records", types={"call.ended"}) as sub:
            [(_, event)] = await take(sub, 1)
            assert event.call_id == "c0"
            pending = await bus.client.xpending("t:events", "records")
            assert pending["pending"] == 1  # only the one handed out
    finally:
        await bus.close()


async def test_redis_unreadable_entries_are_skipped(redis_clean: str, clock: FakeClock) -> None:
    bus = RedisEventBus.from_url(redis_clean, prefix="t:")
    try:
        async with bus.subscribe() as sub, bus.subscribe(group="g") as member:
            await bus.client.xadd("t:events", {"e": '{"type": "no.such"}'})
            await bus.client.xadd("t:events", {"other": "field"})
            await bus.publish(ended(7, clock))
            [(_, got)] = await take(sub, 1)
            [(_, got_group)] = await take(member, 1)
        assert got.call_id == got_group.call_id == "c7"
    finally:
        await bus.close()


async def test_redis_stream_is_trimmed(redis_clean: str, clock: FakeClock) -> None:
    bus = RedisEventBus.from_url(redis_clean, prefix="t:", maxlen=10)
    try:
        for n in range(500):
            await bus.publish(ended(n, clock))
        length = await bus.client.xlen("t:events")
        assert 10 <= length < 500
    finally:
        await bus.close()


async def test_redis_unreachable_bus_is_unavailable_quickly(clock: FakeClock) -> None:
    bus = RedisEventBus.from_url("redis://127.0.0.1:1/0")
    try:
        async with asyncio.timeout(3):
            with pytest.raises(StateUnavailable):
                await bus.publish(ended(0, clock))
            with pytest.raises(StateUnavailable):
                async with bus.subscribe():
                    pass
            with pytest.raises(StateUnavailable):
                async with bus.subscribe(group="g"):
                    pass
    finally:
        await bus.close()


# (reply, entries): XREAD replies as RESP2 and RESP3 clients parse them.
STREAM_REPLIES = [
    (None, []),
    ([], []),
    ({}, []),
    (
        [["s", [("1-0", {"e": "a"}), ("2-0", {"e": "b"})]]],
        [("1-0", {"e": "a"}), ("2-0", {"e": "b"})],
    ),
    ({"s": [[("1-0", {"e": "a"})]]}, [("1-0", {"e": "a"})]),
    ({"s": [("1-0", {"e": "a"})]}, [("1-0", {"e": "a"})]),
    ([["s", [(b"3-0", None)]]], [("3-0", None)]),
]


@pytest.mark.parametrize(("reply", "entries"), STREAM_REPLIES)
def test_stream_entries(reply: object, entries: list[tuple[str, object]]) -> None:
    assert stream_entries(reply) == entries
