"""Applying bus events to the records, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from records_script import T0, at, comparable, journey

from loopline.domain.agents import Presence
from loopline.domain.calls import CallStatus
from loopline.domain.clock import FakeClock
from loopline.domain.events import AgentStateChanged, CallerView, CallReceived
from loopline.records import OfferOutcome, RecordsUnavailable, SqlRecords
from loopline.records.fold import apply_event


async def apply_all(records: SqlRecords, order: list[int] | None = None) -> list[bool]:
    script = journey()
    indices = order if order is not None else list(range(len(script)))
    return [await records.apply(*script[i]) for i in indices]


async def test_journey_yields_the_record_and_its_trail(
    records: SqlRecords, clock: FakeClock
) -> None:
    assert await apply_all(records) == [True] * len(journey())

    record = await records.get_call("call-1")
    assert record is not None
    assert record.status is CallStatus.ENDED
    assert (record.provider_call_id, record.caller_number, record.campaign) == (
        "CA-call-1",
        "+15551230000",
        "spring",
    )
    assert (record.queue, record.policy, record.agent_id) == ("sales-overflow", "any-sales", "a2")
    assert (record.received_at, record.queued_at, record.answered_at, record.ended_at) == (
        T0,
        at(T0, 21.6),
        at(T0, 43),
        at(T0, 163),
    )
    assert record.received_at.tzinfo is UTC
    assert (record.duration_s, record.end_reason) == (120.0, "completed")
    assert record.context["crm"] == {"tier": "gold"}
    assert record.updated_at == clock.now()
    assert [(d.seq, d.trigger, d.outcome, d.policy, d.agent_id) for d in record.decisions] == [
        (1, "webhook", "offered", "vip-sales", "a1"),
        (2, "reroute", "queued", "vip-sales", None),
        (3, "dequeue", "offered", "any-sales", "a2"),
    ]
    assert record.decisions[0].candidates[0].agent_id == "a1"
    assert record.decisions[0].rejected == {"a3": "offline"}
    assert [(o.agent_id, o.outcome, o.offered_at, o.closed_at) for o in record.offers] == [
        ("a1", OfferOutcome.NO_ANSWER, at(T0, 1.1), at(T0, 21)),
        ("a2", OfferOutcome.ANSWERED, at(T0, 40.1), at(T0, 43)),
    ]
    # The stored record is exactly what the pure rules give.
    expected = None
    for _, event in journey():
        expected = apply_event(expected, "call-1", event, clock.now())
    assert comparable(record) == comparable(expected)


async def test_a_redelivered_event_is_not_applied_twice(records: SqlRecords) -> None:
    await apply_all(records)
    assert await apply_all(records) == [False] * len(journey())
    record = await records.get_call("call-1")
    assert record is not None
    assert [d.seq for d in record.decisions] == [1, 2, 3]
    assert len(record.offers) == 2
    assert await records.count_calls() == 1


async def test_event_ids_are_unique_per_source(records: SqlRecords) -> None:
    event_id, received = journey()[0]
    assert await records.apply(event_id, received, source="node-a") is True
    assert await records.apply(event_id, received, source="node-a") is False
    assert await records.apply(event_id, received, source="node-b") is True


async def test_agent_state_and_callless_events_are_ignored(records: SqlRecords) -> None:
    state = AgentStateChanged(at=T0, agent_id="a1", presence=Presence.AVAILABLE)
    assert await records.apply("1-0", state) is False
    assert await records.count_calls() == 0


ORDERS = {
    "reversed": list(reversed(range(10))),
    "received-last": [*range(1, 10), 0],
    "ended-first": [9, *range(9)],
    **{f"shuffled-{seed}": random.Random(seed).sample(range(10), 10) for seed in (1, 2, 3)},
}


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
async def test_out_of_order_events_give_the_same_record(
    records: SqlRecords, order: list[int]
) -> None:
    assert await apply_all(records, order) == [True] * 10
    expected = None
    for _, event in journey():
        expected = apply_event(expected, "call-1", event, T0)
    assert comparable(await records.get_call("call-1")) == comparable(expected)


async def test_routed_before_received_creates_the_call(records: SqlRecords) -> None:
    script = journey()
    await records.apply(*script[1])
    early = await records.get_call("call-1")
    assert early is not None
    assert (early.status, early.provider_call_id, early.received_at) == (
        CallStatus.OFFERED,
        None,
        at(T0, 1),
    )
    assert [d.seq for d in early.decisions] == [1]
    await records.apply(*script[0])
    late = await records.get_call("call-1")
    assert late is not None
    assert (late.status, late.provider_call_id, late.received_at) == (
        CallStatus.OFFERED,
        "CA-call-1",
        T0,
    )


def received(call_id: str, when: datetime) -> CallReceived:
    return CallReceived(
        call_id=call_id,
        at=when,
        provider_call_id=f"CA-{call_id}",
        caller=CallerView(number="+15550000000"),
        dialed="+18005550100",
    )


async def test_list_and_count_calls(records: SqlRecords) -> None:
    assert await records.list_calls() == []
    assert await records.count_calls() == 0
    for n in range(5):
        await records.apply(f"r{n}", received(f"c{n}", at(T0, 60 * n)))
    await records.apply(*journey("c0")[1])

    assert await records.count_calls() == 5
    listed = await records.list_calls()
    assert [c.call_id for c in listed] == ["c4", "c3", "c2", "c1", "c0"]
    assert all(c.decisions == [] and c.offers == [] for c in listed)
    assert [c.call_id for c in await records.list_calls(limit=2)] == ["c4", "c3"]
    assert [c.call_id for c in await records.list_calls(since=at(T0, 120))] == ["c4", "c3", "c2"]
    # `since` is an instant, whatever zone it is written in.
    eastern = timezone(timedelta(hours=-5))
    since = at(T0, 180).astimezone(eastern)
    assert [c.call_id for c in await records.list_calls(since=since)] == ["c4", "c3"]


async def test_get_unknown_call(records: SqlRecords) -> None:
    assert await records.get_call("nope") is None


async def test_ping_and_close(records: SqlRecords) -> None:
    await records.ping()
    await records.close()
    with pytest.raises(RecordsUnavailable):
        await records.ping()
    with pytest.raises(RecordsUnavailable):
        await records.apply(*journey()[0])


async def test_unreachable_postgres_is_reported_not_crashed() -> None:
    store = SqlRecords("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    with pytest.raises(RecordsUnavailable):
        await store.start()
    with pytest.raises(RecordsUnavailable):
        await store.ping()
