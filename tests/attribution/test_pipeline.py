"""The outcome pipeline on real records: a call's events and transcript in, its outcome, QA
score, conversions, outbox rows, KPI row and bus events out; missed calls found by the sweep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio

from loopline.attribution.pipeline import AttributionPipeline
from loopline.attribution.store import AttributionStore
from loopline.config.attribution import AttributionConfig
from loopline.domain.clock import FakeClock
from loopline.domain.events import (
    CallAnswered,
    CallEnded,
    CallerView,
    CallReceived,
    Event,
    UtteranceEvent,
)
from loopline.records import SqlRecords
from loopline.state.memory import MemoryEventBus
from tests.attribution.conftest import T0
from tests.records.records_databases import sqlite_url

CONFIG = AttributionConfig.model_validate(
    {
        "settle_s": 0,
        "conversions": [{"outcome": "sale", "name": "Phone sale", "value": 300}],
        "destinations": [{"kind": "webhook", "name": "crm", "url": "http://127.0.0.1:9/h"}],
    }
)


@pytest_asyncio.fixture
async def parts(
    tmp_path: Path,
) -> AsyncIterator[tuple[SqlRecords, AttributionStore, MemoryEventBus]]:
    url = sqlite_url(tmp_path)
    records = SqlRecords(url, clock=FakeClock(T0))
    await records.start()
    store = AttributionStore(url)
    await store.start()
    bus = MemoryEventBus()
    try:
        yield records, store, bus
    finally:
        await bus.close()
        await store.close()
        await records.close()


def call_events(call_id: str, answered: bool = True) -> list[Event]:
    events: list[Event] = [
        CallReceived(
            call_id=call_id,
            at=T0,
            provider_call_id=f"CA{call_id}",
            caller=CallerView(number="+14155550100"),
            dialed="+15005550100",
            campaign="spring-sale",
        ),
    ]
    if answered:
        events.append(CallAnswered(call_id=call_id, at=T0 + timedelta(seconds=8), agent_id="ana"))
    events.append(
        CallEnded(
            call_id=call_id,
            at=T0 + timedelta(minutes=5),
            duration_s=300,
            agent_id="ana" if answered else None,
        )
    )
    return events


def said(call_id: str, speaker: str, text: str, at_s: int) -> UtteranceEvent:
    return UtteranceEvent(
        type="utterance.final",
        call_id=call_id,
        at=T0 + timedelta(seconds=at_s),
        track="outbound" if speaker == "agent" else "inbound",
        speaker=speaker,  # type: ignore[arg-type]
        text=text,
        start_ms=at_s * 1000,
        end_ms=at_s * 1000 + 2000,
    )


async def test_an_ended_call_gets_outcome_qa_conversion_and_kpi_row(
    parts: tuple[SqlRecords, AttributionStore, MemoryEventBus],
) -> None:
    records, store, bus = parts
    clock = FakeClock(T0 + timedelta(minutes=6))
    pipeline = AttributionPipeline(
        config=CONFIG, store=store, records=records, bus=bus, clock=clock
    )
    for i, event in enumerate(call_events("c1")):
        await records.apply(f"e{i}", event)
    # One line reached the records' transcript, the other only this node's bus.
    await records.apply(
        "u1", said("c1", "agent", "Thanks for calling Harbor, this call may be recorded", 9)
    )
    pipeline.observe(
        said("c1", "agent", "Great news, your payment went through. You're all set.", 200)
    )
    async with bus.subscribe() as sub:
        assert await pipeline.process("c1")
        seen: list[str] = []
        async with asyncio.timeout(2):
            async for _, event in sub:
                seen.append(event.type)
                if event.type == "conversion.created":
                    break
    assert seen == ["outcome.classified", "qa.scored", "conversion.created"]
    stored = await store.outcome_of("c1")
    assert stored is not None
    assert (stored["label"], stored["source"]) == ("sale", "rules")
    assert stored["qa"]["score"] == 100.0
    [conv] = stored["conversions"]
    assert (conv["name"], conv["value"]) == ("Phone sale", 300.0)
    # An automatic conversion waits for the agent's word before it may be sent.
    [row] = await store.entries(destination="crm")
    assert row.status == "pending" and row.next_attempt_at == clock.now() + timedelta(seconds=120)
    report = await store.kpis(T0.date(), T0.date(), "campaign")
    assert (report.totals.calls, report.totals.phone_revenue, report.totals.qa_coverage) == (
        1,
        300.0,
        1.0,
    )


async def test_the_sweep_finds_ended_calls_that_never_got_their_row(
    parts: tuple[SqlRecords, AttributionStore, MemoryEventBus],
) -> None:
    records, store, bus = parts
    clock = FakeClock(T0 + timedelta(hours=1))
    for n, call_id in enumerate(["m1", "m2"]):
        for i, event in enumerate(call_events(call_id, answered=False)):
            await records.apply(f"{n}-{i}", event)
    missing = await store.unclassified_calls(ended_before=clock.now(), since=T0 - timedelta(days=1))
    assert sorted(missing) == ["m1", "m2"]
    pipeline = AttributionPipeline(
        config=CONFIG, store=store, records=records, bus=bus, clock=clock
    )
    assert await pipeline.process("m1") and await pipeline.process("m2")
    assert (
        await store.unclassified_calls(ended_before=clock.now(), since=T0 - timedelta(days=1)) == []
    )
    stored = await store.outcome_of("m1")
    assert stored is not None and stored["label"] == "missed"
    assert not await pipeline.process("unknown-call")  # not in the records (yet): try later
