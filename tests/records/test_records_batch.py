"""Applying bus events in batches (`apply_many`): one transaction, the records as one by one."""

from __future__ import annotations

import asyncio
import random

import pytest
from records_script import T0, at, comparable, journey

from loopline.domain.agents import Presence
from loopline.domain.clock import FakeClock
from loopline.domain.events import AgentStateChanged, Event, UtteranceEvent
from loopline.records import SqlRecords
from loopline.records.fold import apply_event
from loopline.records.models import CallRecord


def expected(call_id: str) -> CallRecord:
    record = None
    for _, event in journey(call_id):
        record = apply_event(record, call_id, event, T0)
    assert record is not None
    return record


def utterance(call_id: str, kind: str, start_ms: int, text: str) -> UtteranceEvent:
    return UtteranceEvent(
        type=kind,
        call_id=call_id,
        at=at(T0, 50 + start_ms / 1000),
        track="inbound",
        speaker="caller",
        text=text,
        start_ms=start_ms,
        end_ms=start_ms + 900,
    )


async def test_a_batch_with_duplicates_and_out_of_order_events_gives_the_same_record(
    records: SqlRecords,
) -> None:
    one, two = journey("call-1"), journey("call-2")
    state = AgentStateChanged(at=T0, agent_id="a1", presence=Presence.AVAILABLE)
    items: list[tuple[str, Event]] = [
        *reversed(one),
        ("s-1", state),
        one[3],  # a redelivery inside the batch
        *random.Random(4).sample(two, len(two)),
        one[0],
    ]
    results = await records.apply_many(items)

    assert results == [True] * 10 + [False, False] + [True] * 10 + [False]
    for call_id in ("call-1", "call-2"):
        assert comparable(await records.get_call(call_id)) == comparable(expected(call_id))
    assert await records.count_calls() == 2


async def test_batches_of_any_split_and_redelivery_converge(records: SqlRecords) -> None:
    rng = random.Random(11)
    items: list[tuple[str, Event]] = [e for c in ("c1", "c2", "c3") for e in journey(c)]
    rng.shuffle(items)
    applied = 0
    start = 0
    while start < len(items):
        size = rng.randint(1, 7)
        # Each batch carries one event of an earlier batch again, as a redelivery would.
        again = [items[rng.randrange(start)]] if start else []
        results = await records.apply_many([*items[start : start + size], *again])
        assert results[len(results) - len(again) :] == [False] * len(again)
        applied += sum(results)
        start += size
    assert applied == len(items)
    assert await records.apply_many(items) == [False] * len(items)
    for call_id in ("c1", "c2", "c3"):
        assert comparable(await records.get_call(call_id)) == comparable(expected(call_id))


async def test_a_batch_matches_applying_one_by_one(records: SqlRecords, clock: FakeClock) -> None:
    order = random.Random(5).sample(range(10), 10)
    for n in order:
        assert await records.apply(*journey("single")[n])
    assert await records.apply_many([journey("batched")[n] for n in order]) == [True] * 10
    single, batched = await records.get_call("single"), await records.get_call("batched")
    assert single is not None and batched is not None
    renamed = batched.model_copy(
        update={"call_id": "single", "provider_call_id": single.provider_call_id}
    )
    assert comparable(renamed) == comparable(single)
    assert batched.updated_at == clock.now()


async def test_final_utterances_are_kept_and_partials_skipped_in_a_batch(
    records: SqlRecords,
) -> None:
    items: list[tuple[str, Event]] = [
        ("u1", utterance("call-1", "utterance.final", 2000, "Second.")),
        ("u2", utterance("call-1", "utterance.partial", 2500, "Thi")),
        *journey("call-1")[:3],
        ("u3", utterance("call-1", "utterance.final", 1000, "First.")),
        ("u1", utterance("call-1", "utterance.final", 2000, "Second.")),
    ]
    assert await records.apply_many(items) == [True, False, True, True, True, True, False]
    record = await records.get_call("call-1")
    assert record is not None
    assert [u.text for u in record.transcript] == ["First.", "Second."]
    assert record.provider_call_id == "CA-call-1"


async def test_nothing_to_keep_opens_no_write(records: SqlRecords) -> None:
    state = AgentStateChanged(at=T0, agent_id="a1", presence=Presence.AVAILABLE)
    assert await records.apply_many([]) == []
    assert await records.apply_many([("1-0", state)]) == [False]
    assert await records.count_calls() == 0


@pytest.mark.parametrize("seed", [1, 2])
async def test_two_writers_with_overlapping_batches_apply_each_event_once(
    records_url: str, clock: FakeClock, seed: int
) -> None:
    first = SqlRecords(records_url, clock=clock)
    await first.start()
    second = SqlRecords(records_url, clock=clock)
    await second.start()
    try:
        items: list[tuple[str, Event]] = [e for n in range(6) for e in journey(f"c{n}")]
        rng = random.Random(seed)

        async def write(store: SqlRecords) -> int:
            mine = rng.sample(items, len(items))
            done = 0
            for start in range(0, len(mine), 9):
                done += sum(await store.apply_many(mine[start : start + 9]))
            return done

        counts = await asyncio.gather(write(first), write(second))
        assert sum(counts) == len(items)
        for n in range(6):
            call_id = f"c{n}"
            assert comparable(await first.get_call(call_id)) == comparable(expected(call_id))
    finally:
        await first.close()
        await second.close()


def test_the_writer_subscribes_to_every_type_the_records_keep() -> None:
    kept = [event for _, event in journey()] + [
        utterance("c", "utterance.final", 0, "Hello."),
    ]
    skipped: list[Event] = [
        utterance("c", "utterance.partial", 0, "Hel"),
        AgentStateChanged(at=T0, agent_id="a1", presence=Presence.AVAILABLE),
    ]
    assert {e.type for e in kept} == SqlRecords.event_types
    assert not {e.type for e in skipped} & SqlRecords.event_types
