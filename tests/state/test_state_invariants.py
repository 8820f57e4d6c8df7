"""Random runs of reserve / confirm / release / expire against a small model of who holds what.

Whatever the order of operations, concurrent or not, no agent is ever over capacity, no call is
ever held by two agents, and each store answers as the model says it must.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopline.domain.agents import AgentState, Presence
from loopline.domain.clock import FakeClock
from loopline.state.base import StateStore
from loopline.state.encoding import expiry_ms, to_ms
from loopline.state.memory import MemoryStateStore
from loopline.state.redis import RedisStateStore

CAPACITY = {"a": 1, "b": 2, "c": 3}
agents = st.sampled_from(sorted(CAPACITY))
calls = st.sampled_from([f"k{n}" for n in range(8)])
ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"), calls, st.lists(agents, max_size=3), st.sampled_from([1, 5, 10])
        ),
        st.tuples(
            st.just("burst"), st.lists(calls, min_size=2, max_size=6), st.just(["a", "b", "c"])
        ),
        st.tuples(st.just("confirm"), calls, agents),
        st.tuples(st.just("release"), calls, agents),
        st.tuples(st.just("expire")),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 2.0, 7.0])),
        st.tuples(st.just("presence"), agents, st.sampled_from(list(Presence))),
    ),
    max_size=40,
)


@dataclass
class Held:
    agent_id: str
    active: bool
    expires_ms: int


async def snapshot(store: StateStore) -> dict[str, AgentState]:
    return {a.agent_id: a for a in await store.list_agents()}


def check_invariants(states: dict[str, AgentState], model: dict[str, Held]) -> None:
    holders: dict[str, str] = {}
    for state in states.values():
        assert state.load <= state.capacity, state
        for call in [*state.reserved, *state.active]:
            assert call not in holders, f"{call} held by {holders.get(call)} and {state.agent_id}"
            holders[call] = state.agent_id
    expected = {
        call: (h.agent_id, "active" if h.active else "reserved") for call, h in model.items()
    }
    actual = {
        call: (s.agent_id, "active" if call in s.active else "reserved")
        for s in states.values()
        for call in [*s.reserved, *s.active]
    }
    assert actual == expected


async def run(store: StateStore, steps: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    for agent_id, capacity in CAPACITY.items():
        await store.register_agent(agent_id, capacity)
        await store.set_presence(agent_id, Presence.AVAILABLE, clock.now())
    model: dict[str, Held] = {}
    for step in steps:
        now = clock.now()
        before = await snapshot(store)
        match step:
            case ("reserve", call, candidates, ttl):
                got = await store.reserve(call, candidates, ttl, now)
                if call in model:
                    assert got == model[call].agent_id
                else:
                    with_room = [c for c in candidates if c in before and before[c].has_room]
                    assert got == (with_room[0] if with_room else None)
                    if got is not None:
                        model[call] = Held(got, False, expiry_ms(now, ttl))
            case ("burst", burst_calls, candidates):
                results = await asyncio.gather(
                    *(store.reserve(call, candidates, 5, now) for call in burst_calls)
                )
                for call, got in zip(burst_calls, results, strict=True):
                    if call in model:
                        assert got == model[call].agent_id
                    elif got is not None:
                        model[call] = Held(got, False, expiry_ms(now, 5))
            case ("confirm", call, agent_id):
                held = model.get(call)
                ok = (
                    held is not None
                    and held.agent_id == agent_id
                    and (held.active or held.expires_ms > to_ms(now))
                )
                assert await store.confirm(call, agent_id, now) == ok
                if ok:
                    model[call].active = True
            case ("release", call, agent_id):
                held = model.get(call)
                released = await store.release(call, agent_id, now)
                assert (released is not None) == (held is not None and held.agent_id == agent_id)
                if released is not None:
                    del model[call]
                    assert released.presence != Presence.BUSY
            case ("expire",):
                due = {c for c, h in model.items() if not h.active and h.expires_ms <= to_ms(now)}
                claimed = await store.claim_expired(now, limit=100)
                assert sorted(r.call_id for r in claimed) == sorted(due)
                for r in claimed:
                    assert r.agent_id == model.pop(r.call_id).agent_id
            case ("advance", seconds):
                clock.advance(seconds)
            case ("presence", agent_id, presence):
                await store.set_presence(agent_id, presence, now)
        check_invariants(await snapshot(store), model)


@settings(max_examples=150, deadline=None)
@given(steps=ops)
async def test_memory_store_keeps_its_invariants(steps: list[tuple[Any, ...]]) -> None:
    await run(MemoryStateStore(), steps)


@pytest.mark.redis
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=ops)
async def test_redis_store_keeps_its_invariants(
    redis_clean: str, steps: list[tuple[Any, ...]]
) -> None:
    # A fresh prefix per example: the examples share the flushed database.
    store = RedisStateStore.from_url(redis_clean, prefix=f"h{uuid.uuid4().hex[:8]}:")
    try:
        await run(store, steps)
    finally:
        await store.close()
