"""`agents_with_room`, the routing read, on both stores: always the agents `list_agents` says
have room, field for field, whatever happened to them."""

from __future__ import annotations

import random

import pytest

from loopline.agents.directory import AgentDirectory
from loopline.domain.agents import Agent, Endpoint, Presence
from loopline.domain.clock import FakeClock
from loopline.state.base import StateStore
from loopline.state.memory import MemoryEventBus

TTL = 20.0


async def expected(store: StateStore) -> list[object]:
    return [a for a in await store.list_agents() if a.has_room]


async def test_lists_agents_with_room_in_id_order(store: StateStore, clock: FakeClock) -> None:
    now = clock.now()
    for agent_id, capacity in (("dev", 1), ("ana", 2), ("ben", 1), ("cy", 1)):
        await store.register_agent(agent_id, capacity)
    assert await store.agents_with_room() == []
    for agent_id in ("dev", "ana", "ben"):
        await store.set_presence(agent_id, Presence.AVAILABLE, now)
    await store.set_presence("cy", Presence.AWAY, now)
    assert await store.reserve("c1", ["ben"], TTL, now) == "ben"  # full: capacity 1
    assert await store.reserve("c2", ["ana"], TTL, now) == "ana"  # one of two slots

    room = await store.agents_with_room()
    assert [a.agent_id for a in room] == ["ana", "dev"]
    assert room == [await store.get_agent("ana"), await store.get_agent("dev")]
    assert room[0].reserved == ["c2"]
    assert room[0].last_offered_at == now


@pytest.mark.parametrize(
    ("step", "has_room"),
    [
        ("reserve to capacity", False),
        ("confirm below capacity", True),
        ("release", True),
        ("away", False),
        ("expired", True),
        ("capacity up", True),
    ],
)
async def test_follows_each_kind_of_change(
    store: StateStore, clock: FakeClock, step: str, has_room: bool
) -> None:
    now = clock.now()
    await store.register_agent("ana", 2)
    await store.set_presence("ana", Presence.AVAILABLE, now)
    assert await store.reserve("c1", ["ana"], TTL, now) == "ana"
    if step == "reserve to capacity":
        await store.reserve("c2", ["ana"], TTL, now)
    elif step == "confirm below capacity":
        await store.confirm("c1", "ana", now)
    elif step == "release":
        await store.reserve("c2", ["ana"], TTL, now)
        await store.release("c2", "ana", now)
    elif step == "away":
        await store.set_presence("ana", Presence.AWAY, now)
    elif step == "expired":
        await store.reserve("c2", ["ana"], TTL, now)
        clock.advance(TTL + 1)
        assert len(await store.claim_expired(clock.now())) == 2
    elif step == "capacity up":
        await store.reserve("c2", ["ana"], TTL, now)
        await store.register_agent("ana", 3)
    room = await store.agents_with_room()
    assert [a.agent_id for a in room] == (["ana"] if has_room else [])
    assert room == await expected(store)


async def test_agrees_with_list_agents_through_random_traffic(
    store: StateStore, clock: FakeClock
) -> None:
    rng = random.Random(20)
    agents = [f"a{i}" for i in range(8)]
    for agent_id in agents:
        await store.register_agent(agent_id, rng.choice((1, 1, 2, 3)))
    live: dict[str, str] = {}  # call id -> agent, reserved or active
    presences = [Presence.AVAILABLE] * 4 + [Presence.AWAY, Presence.OFFLINE, Presence.WRAP_UP]
    for n in range(150):
        now = clock.now()
        move = rng.random()
        if move < 0.2:
            await store.set_presence(rng.choice(agents), rng.choice(presences), now)
        elif move < 0.55:
            got = await store.reserve(f"c{n}", rng.sample(agents, 3), TTL, now)
            if got is not None:
                live[f"c{n}"] = got
        elif move < 0.7 and live:
            call_id = rng.choice(sorted(live))
            await store.confirm(call_id, live[call_id], now)
        elif move < 0.9 and live:
            call_id = rng.choice(sorted(live))
            await store.release(call_id, live.pop(call_id), now)
        elif move < 0.95:
            for gone in await store.claim_expired(now):
                live.pop(gone.call_id, None)
        else:
            await store.register_agent(rng.choice(agents), rng.choice((1, 2, 3)))
        clock.advance(rng.choice((0.5, 1, 3)))
        assert await store.agents_with_room() == await expected(store), f"after move {n}"


async def test_unchanged_agents_keep_their_snapshot(store: StateStore, clock: FakeClock) -> None:
    """The directory builds a routing snapshot only for an agent whose state changed."""
    now = clock.now()
    endpoint = Endpoint(kind="client", address="x")
    configured = [Agent(id=i, name=i, endpoint=endpoint) for i in ("ana", "ben", "cy")]
    directory = AgentDirectory(configured, store, MemoryEventBus())
    await directory.register_all()
    for agent_id in ("ana", "ben", "cy"):
        await store.set_presence(agent_id, Presence.AVAILABLE, now)
    first = {s.agent.id: s for s in await directory.routable()}
    assert sorted(first) == ["ana", "ben", "cy"]

    clock.advance(5)
    await store.set_presence("ben", Presence.AWAY, clock.now())
    await store.set_presence("cy", Presence.WRAP_UP, clock.now())
    await store.set_presence("cy", Presence.AVAILABLE, clock.now())
    second = {s.agent.id: s for s in await directory.routable()}
    assert sorted(second) == ["ana", "cy"]
    assert second["ana"] is first["ana"]
    assert second["cy"] is not first["cy"]
    assert second["cy"].state == await store.get_agent("cy")
    assert directory.size == 3
