"""One suite for both state stores (memory and Redis): agents, reservations, queues, calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from loopline.domain.agents import Presence
from loopline.domain.calls import CallContext, Caller, CallState, QueuedCall, TimeFacts
from loopline.domain.clock import FakeClock
from loopline.state.base import StateStore

TTL = 20.0

# Opens another node on the same live state (see conftest `other_node`).
NodeFactory = Callable[[], Awaitable[StateStore]]


async def agent(store: StateStore, agent_id: str, clock: FakeClock, capacity: int = 1) -> None:
    await store.register_agent(agent_id, capacity)
    await store.set_presence(agent_id, Presence.AVAILABLE, clock.now())


def call_state(call_id: str, provider_call_id: str, clock: FakeClock) -> CallState:
    now = clock.now()
    context = CallContext(
        call_id=call_id,
        caller=Caller(number="+15551230000", valid=True),
        dialed="+15559870000",
        time=TimeFacts(hour=15, weekday=0, in_business_hours=True, iso=now.isoformat()),
    )
    return CallState(
        call_id=call_id, provider_call_id=provider_call_id, context=context, received_at=now
    )


# -- agents and presence -------------------------------------------------------------------


async def test_register_creates_an_offline_agent(store: StateStore) -> None:
    state = await store.register_agent("ana", 2)
    assert (state.agent_id, state.presence, state.capacity, state.load) == (
        "ana",
        Presence.OFFLINE,
        2,
        0,
    )
    assert await store.get_agent("ana") == state
    assert await store.get_agent("nobody") is None


async def test_register_again_keeps_live_state(store: StateStore, clock: FakeClock) -> None:
    await agent(store, "ana", clock, capacity=1)
    assert await store.reserve("c1", ["ana"], TTL, clock.now()) == "ana"
    state = await store.register_agent("ana", 3)
    assert (state.presence, state.capacity, state.reserved) == (Presence.AVAILABLE, 3, ["c1"])


async def test_presence_change_stamps_times(store: StateStore, clock: FakeClock) -> None:
    await store.register_agent("ana", 1)
    state = await store.set_presence("ana", Presence.AVAILABLE, clock.now())
    assert state.presence == Presence.AVAILABLE
    assert state.presence_since == clock.now()
    assert state.idle_since == clock.now()
    before = clock.now()
    clock.advance(5)
    same = await store.set_presence("ana", Presence.AVAILABLE, clock.now())
    assert same.presence_since == before  # not a change
    away = await store.set_presence("ana", Presence.AWAY, clock.now())
    assert (away.presence, away.presence_since, away.idle_since) == (
        Presence.AWAY,
        clock.now(),
        before,
    )


async def test_presence_of_an_unknown_agent_is_a_key_error(
    store: StateStore, clock: FakeClock
) -> None:
    with pytest.raises(KeyError):
        await store.set_presence("nobody", Presence.AVAILABLE, clock.now())


async def test_list_agents_in_id_order(store: StateStore) -> None:
    for agent_id in ["cy", "ana", "bo"]:
        await store.register_agent(agent_id, 1)
    assert [a.agent_id for a in await store.list_agents()] == ["ana", "bo", "cy"]


async def test_capacity_below_one_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError):
        await store.register_agent("ana", 0)


# -- reservations --------------------------------------------------------------------------

# (agents as id: (presence, capacity, calls already reserved), candidates, expected)
RESERVE_CASES = [
    ({"a": ("available", 1, 0), "b": ("available", 1, 0)}, ["a", "b"], "a"),
    ({"a": ("available", 1, 0), "b": ("available", 1, 0)}, ["b", "a"], "b"),
    ({"a": ("available", 1, 1), "b": ("available", 1, 0)}, ["a", "b"], "b"),
    ({"a": ("away", 1, 0), "b": ("available", 1, 0)}, ["a", "b"], "b"),
    ({"a": ("offline", 1, 0)}, ["a"], None),
    ({"a": ("available", 2, 1)}, ["a"], "a"),
    ({"a": ("available", 2, 2)}, ["a"], None),
    ({"a": ("available", 1, 0)}, ["ghost", "a"], "a"),
    ({"a": ("available", 1, 0)}, [], None),
    ({"a": ("available", 1, 0)}, ["b"], None),
]


@pytest.mark.parametrize(("agents", "candidates", "expected"), RESERVE_CASES)
async def test_reserve_takes_the_first_candidate_with_room(
    store: StateStore,
    clock: FakeClock,
    agents: dict[str, tuple[str, int, int]],
    candidates: list[str],
    expected: str | None,
) -> None:
    for agent_id, (presence, capacity, load) in agents.items():
        await agent(store, agent_id, clock, capacity)
        for n in range(load):
            assert await store.reserve(f"{agent_id}-pre{n}", [agent_id], TTL, clock.now())
        await store.set_presence(agent_id, Presence(presence), clock.now())
    assert await store.reserve("call", candidates, TTL, clock.now()) == expected


async def test_reservation_counts_against_capacity_at_once(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock, capacity=2)
    assert await store.reserve("c1", ["ana"], TTL, clock.now()) == "ana"
    assert await store.reserve("c2", ["ana"], TTL, clock.now()) == "ana"
    assert await store.reserve("c3", ["ana"], TTL, clock.now()) is None
    state = await store.get_agent("ana")
    assert state is not None
    assert (state.reserved, state.load, state.has_room) == (["c1", "c2"], 2, False)
    assert state.last_offered_at == clock.now()


async def test_a_call_holds_one_reservation(store: StateStore, clock: FakeClock) -> None:
    await agent(store, "ana", clock, capacity=2)
    await agent(store, "bo", clock)
    assert await store.reserve("c1", ["ana"], TTL, clock.now()) == "ana"
    assert await store.reserve("c1", ["bo", "ana"], TTL, clock.now()) == "ana"
    # Found by the invariant test: Redis once answered None here without asking.
    assert await store.reserve("c1", [], TTL, clock.now()) == "ana"
    ana, bo = await store.get_agent("ana"), await store.get_agent("bo")
    assert ana is not None and bo is not None
    assert (ana.reserved, bo.reserved) == (["c1"], [])


async def test_room_follows_capacity_and_presence_changes(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock, capacity=2)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    assert (await store.queue_stats("q", clock.now())).agents_available == 1
    await store.register_agent("ana", 1)  # now full
    assert (await store.queue_stats("q", clock.now())).agents_available == 0
    assert await store.reserve("c2", ["ana"], TTL, clock.now()) is None
    await store.register_agent("ana", 3)
    await store.set_presence("ana", Presence.AWAY, clock.now())
    assert await store.reserve("c2", ["ana"], TTL, clock.now()) is None
    clock.advance(30)
    back = await store.set_presence("ana", Presence.AVAILABLE, clock.now())
    assert back.idle_since != clock.now()  # still holds c1: not idle
    assert await store.reserve("c2", ["ana"], TTL, clock.now()) == "ana"
    assert (await store.queue_stats("q", clock.now())).agents_available == 1


async def test_confirm_turns_the_reservation_active_and_busy_at_capacity(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock, capacity=2)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    clock.advance(3)
    assert await store.confirm("c1", "ana", clock.now())
    state = await store.get_agent("ana")
    assert state is not None
    assert (state.reserved, state.active, state.presence) == ([], ["c1"], Presence.AVAILABLE)
    await store.reserve("c2", ["ana"], TTL, clock.now())
    assert await store.confirm("c2", "ana", clock.now())
    state = await store.get_agent("ana")
    assert state is not None
    assert (state.active, state.presence, state.presence_since) == (
        ["c1", "c2"],
        Presence.BUSY,
        clock.now(),
    )
    assert await store.confirm("c2", "ana", clock.now())  # a retried confirm changes nothing


async def test_confirm_needs_the_agent_holding_the_reservation(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock)
    await agent(store, "bo", clock)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    assert not await store.confirm("c1", "bo", clock.now())
    assert not await store.confirm("c2", "ana", clock.now())
    assert not await store.confirm("c1", "ghost", clock.now())


@pytest.mark.parametrize("late_s", [TTL, TTL + 0.001, TTL + 60])
async def test_confirm_after_expiry_fails(
    store: StateStore, clock: FakeClock, late_s: float
) -> None:
    await agent(store, "ana", clock)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    clock.advance(late_s)
    assert not await store.confirm("c1", "ana", clock.now())
    state = await store.get_agent("ana")
    assert state is not None
    assert state.active == []


async def test_claim_expired_takes_each_reservation_once(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock)
    await agent(store, "bo", clock)
    start = clock.now()
    await store.reserve("c1", ["ana"], 10, start)
    await store.reserve("c2", ["bo"], 30, start)
    clock.advance(9.999)
    assert await store.claim_expired(clock.now()) == []
    clock.advance(0.001)
    claimed = await store.claim_expired(clock.now())
    assert [(r.call_id, r.agent_id, r.expires_at) for r in claimed] == [
        ("c1", "ana", start + timedelta(seconds=10))
    ]
    assert await store.claim_expired(clock.now()) == []
    ana = await store.get_agent("ana")
    assert ana is not None
    assert (ana.reserved, ana.has_room, ana.idle_since) == ([], True, start)
    # The freed slot is offered again; the later expiry is still pending.
    assert await store.reserve("c3", ["ana"], TTL, clock.now()) == "ana"
    clock.advance(60)
    later = await store.claim_expired(clock.now())
    assert sorted(r.call_id for r in later) == ["c2", "c3"]


async def test_claim_expired_honours_the_limit_earliest_first(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock, capacity=5)
    for n in range(5):
        await store.reserve(f"c{n}", ["ana"], 10 + n, clock.now())
    clock.advance(100)
    first = await store.claim_expired(clock.now(), limit=2)
    rest = await store.claim_expired(clock.now(), limit=10)
    assert [r.call_id for r in first] == ["c0", "c1"]
    assert [r.call_id for r in rest] == ["c2", "c3", "c4"]


async def test_confirmed_and_released_calls_never_expire(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock, capacity=2)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    await store.reserve("c2", ["ana"], TTL, clock.now())
    await store.confirm("c1", "ana", clock.now())
    await store.release("c2", "ana", clock.now())
    clock.advance(TTL * 10)
    assert await store.claim_expired(clock.now()) == []


async def test_concurrent_claimers_share_expired_reservations_without_overlap(
    store: StateStore, clock: FakeClock, other_node: NodeFactory
) -> None:
    nodes = [store, await other_node(), await other_node()]
    await agent(store, "ana", clock, capacity=20)
    for n in range(20):
        await store.reserve(f"c{n}", ["ana"], TTL, clock.now())
    clock.advance(TTL)
    results = await asyncio.gather(
        *(nodes[i % 3].claim_expired(clock.now(), limit=3) for i in range(12))
    )
    claimed = [r.call_id for batch in results for r in batch]
    assert sorted(claimed) == sorted(f"c{n}" for n in range(20))


async def test_release_frees_a_busy_agent(store: StateStore, clock: FakeClock) -> None:
    await agent(store, "ana", clock)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    await store.confirm("c1", "ana", clock.now())
    clock.advance(120)
    state = await store.release("c1", "ana", clock.now())
    assert state is not None
    assert (state.presence, state.active, state.calls_today) == (Presence.AVAILABLE, [], 1)
    assert state.idle_since == clock.now()
    assert state.presence_since == clock.now()
    assert await store.reserve("c2", ["ana"], TTL, clock.now()) == "ana"


async def test_release_of_a_reservation_is_not_a_call_taken(
    store: StateStore, clock: FakeClock
) -> None:
    await agent(store, "ana", clock, capacity=2)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    await store.reserve("c2", ["ana"], TTL, clock.now())
    await store.confirm("c2", "ana", clock.now())
    idle_before = (await store.get_agent("ana")).idle_since  # type: ignore[union-attr]
    clock.advance(5)
    state = await store.release("c1", "ana", clock.now())
    assert state is not None
    # Still on c2: not idle, and a released offer is not a handled call.
    assert (state.reserved, state.active, state.calls_today) == ([], ["c2"], 0)
    assert state.idle_since == idle_before
    assert await store.confirm("c1", "ana", clock.now()) is False


async def test_release_of_a_slot_not_held_is_none(store: StateStore, clock: FakeClock) -> None:
    await agent(store, "ana", clock)
    await agent(store, "bo", clock)
    await store.reserve("c1", ["ana"], TTL, clock.now())
    assert await store.release("c1", "bo", clock.now()) is None
    assert await store.release("c9", "ana", clock.now()) is None
    assert await store.release("c1", "ghost", clock.now()) is None
    assert await store.release("c1", "ana", clock.now()) is not None
    assert await store.release("c1", "ana", clock.now()) is None


@pytest.mark.parametrize("capacity", [1, 3])
async def test_concurrent_reserves_from_many_nodes_never_exceed_capacity(
    store: StateStore, clock: FakeClock, other_node: NodeFactory, capacity: int
) -> None:
    nodes = [store, await other_node()]
    agents = ["ana", "bo", "cy"]
    for agent_id in agents:
        await agent(store, agent_id, clock, capacity)
    results = await asyncio.gather(
        *(nodes[n % 2].reserve(f"c{n}", agents, TTL, clock.now()) for n in range(40))
    )
    won = [r for r in results if r is not None]
    assert len(won) == capacity * len(agents)
    for agent_id in agents:
        state = await store.get_agent(agent_id)
        assert state is not None
        assert won.count(agent_id) == capacity == state.load


# -- live calls ----------------------------------------------------------------------------


async def test_call_put_get_index_and_delete(store: StateStore, clock: FakeClock) -> None:
    call = call_state("c1", "CA123", clock)
    await store.put_call(call)
    assert await store.get_call("c1") == call
    assert await store.call_id_for("CA123") == "c1"
    call.agent_id = "ana"  # our copy changes; the stored call does not
    assert (await store.get_call("c1")).agent_id is None  # type: ignore[union-attr]
    await store.put_call(call)
    assert (await store.get_call("c1")).agent_id == "ana"  # type: ignore[union-attr]
    await store.delete_call("c1")
    assert await store.get_call("c1") is None
    assert await store.call_id_for("CA123") is None
    await store.delete_call("c1")  # deleting twice is fine


async def test_unknown_calls_are_none(store: StateStore) -> None:
    assert await store.get_call("nope") is None
    assert await store.call_id_for("nope") is None


# -- queues --------------------------------------------------------------------------------


def queued(
    call_id: str, priority: int, at_s: float, clock: FakeClock, queue: str = "sales"
) -> QueuedCall:
    return QueuedCall(
        call_id=call_id,
        queue=queue,
        priority=priority,
        enqueued_at=clock.now() + timedelta(seconds=at_s),
    )


async def test_queue_serves_highest_priority_then_longest_waiting(
    store: StateStore, clock: FakeClock
) -> None:
    for item in [
        queued("late-low", 0, 30, clock),
        queued("early-low", 0, 0, clock),
        queued("late-high", 5, 40, clock),
        queued("early-high", 5, 10, clock),
        queued("mid-top", 9, 20, clock),
        queued("b-tie", 0, 15, clock),
        queued("a-tie", 0, 15, clock),
    ]:
        await store.enqueue(item)
    order = [q.call_id for q in await store.queued("sales")]
    assert order == [
        "mid-top",
        "early-high",
        "late-high",
        "early-low",
        "a-tie",
        "b-tie",
        "late-low",
    ]
    assert [q.call_id for q in await store.queued("sales", limit=2)] == ["mid-top", "early-high"]
    assert await store.queued("other") == []


async def test_enqueue_again_replaces_the_entry(store: StateStore, clock: FakeClock) -> None:
    await store.enqueue(queued("c1", 0, 0, clock))
    await store.enqueue(queued("c2", 0, 5, clock))
    await store.enqueue(queued("c2", 3, 5, clock))
    items = await store.queued("sales")
    assert [(q.call_id, q.priority) for q in items] == [("c2", 3), ("c1", 0)]


async def test_queue_keeps_the_item_as_given(store: StateStore, clock: FakeClock) -> None:
    item = queued("c1", 2, 0.123456, clock)
    await store.enqueue(item)
    assert await store.queued("sales") == [item]


async def test_concurrent_claims_of_a_queued_call_have_one_winner(
    store: StateStore, clock: FakeClock, other_node: NodeFactory
) -> None:
    nodes = [store, await other_node()]
    await store.enqueue(queued("c1", 0, 0, clock))
    results = await asyncio.gather(*(nodes[n % 2].claim_queued("sales", "c1") for n in range(10)))
    assert results.count(True) == 1
    assert await store.queued("sales") == []
    assert await store.claim_queued("sales", "c1") is False


async def test_queue_names_hold_only_queues_with_calls(store: StateStore, clock: FakeClock) -> None:
    await store.enqueue(queued("c1", 0, 0, clock, queue="sales"))
    await store.enqueue(queued("c2", 0, 0, clock, queue="care"))
    assert await store.queue_names() == ["care", "sales"]
    assert await store.claim_queued("care", "c2")
    assert await store.queue_names() == ["sales"]
    assert await store.claim_queued("care", "c1") is False  # wrong queue


async def test_queue_stats(store: StateStore, clock: FakeClock) -> None:
    await agent(store, "ana", clock)
    await agent(store, "bo", clock, capacity=2)
    await store.register_agent("cy", 1)  # offline
    await store.reserve("x", ["ana"], TTL, clock.now())  # ana is full
    await store.enqueue(queued("urgent", 9, 50, clock))
    await store.enqueue(queued("oldest", 0, 10, clock))
    clock.advance(70)
    stats = await store.queue_stats("sales", clock.now())
    assert (stats.waiting, stats.longest_wait_s, stats.agents_available) == (2, 60.0, 1)
    empty = await store.queue_stats("care", clock.now())
    assert (empty.waiting, empty.longest_wait_s, empty.agents_available) == (0, 0.0, 1)
    both = await store.queue_stats_many(["care", "sales"], clock.now())
    assert both == {"care": empty, "sales": stats}
    assert await store.queue_stats_many([], clock.now()) == {}


async def test_queue_priority_out_of_range_is_refused(store: StateStore, clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        await store.enqueue(queued("c1", 10_000, 0, clock))


# -- small facts ---------------------------------------------------------------------------


async def test_last_agent(store: StateStore) -> None:
    assert await store.get_last_agent("+15551230000") is None
    await store.set_last_agent("+15551230000", "ana")
    await store.set_last_agent("+15551230000", "bo")
    await store.set_last_agent("+15550000000", "cy")
    assert await store.get_last_agent("+15551230000") == "bo"
    assert await store.get_last_agent("+15550000000") == "cy"


async def test_claim_once(store: StateStore) -> None:
    assert await store.claim_once("webhook:CA1", 60)
    assert not await store.claim_once("webhook:CA1", 60)
    assert await store.claim_once("webhook:CA2", 60)


async def test_claim_once_is_concurrent_safe(store: StateStore, other_node: NodeFactory) -> None:
    nodes = [store, await other_node()]
    results = await asyncio.gather(*(nodes[n % 2].claim_once("k", 60) for n in range(10)))
    assert results.count(True) == 1


async def test_ttl_must_be_positive(store: StateStore, clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        await store.claim_once("k", 0)
    with pytest.raises(ValueError):
        await store.reserve("c1", ["ana"], 0, clock.now())
