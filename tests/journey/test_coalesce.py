"""`session.touched` on the bus: at most one per session per interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loopline.domain.events import Event, SessionTouched
from loopline.journey.coalesce import TouchCoalescer
from loopline.journey.service import JourneyService
from loopline.journey.session import StoredTouch
from loopline.journey.store import MemoryJourneyStore
from loopline.state.memory import MemoryEventBus


@pytest.mark.parametrize(
    ("touches", "expected"),
    [
        ([("a", 0.0), ("a", 1.0), ("a", 4.9), ("a", 5.0), ("a", 6.0)], [1, 0, 0, 1, 0]),
        ([("a", 0.0), ("b", 0.5), ("a", 2.0), ("b", 5.6)], [1, 1, 0, 1]),
        ([("a", 0.0), ("a", 100.0)], [1, 1]),  # a quiet session is announced again at once
    ],
)
def test_at_most_one_per_session_per_interval(
    touches: list[tuple[str, float]], expected: list[int]
) -> None:
    coalescer = TouchCoalescer(interval_s=5.0)
    assert [int(coalescer.due(s, t)) for s, t in touches] == expected


def test_memory_stays_bounded() -> None:
    coalescer = TouchCoalescer(interval_s=5.0, max_sessions=3)
    for i in range(10):
        assert coalescer.due(f"s{i}", float(i) / 10)
    assert len(coalescer) == 3
    assert coalescer.due("s9", 1.0) is False  # recent ones are kept
    coalescer.due("late", 20.0)
    assert len(coalescer) == 1  # the quiet ones are forgotten


async def test_service_publishes_coalesced_touches() -> None:
    bus = MemoryEventBus()
    seen: list[Event] = []
    original = bus.publish

    async def publish(event: Event) -> str:
        seen.append(event)
        return await original(event)

    bus.publish = publish  # type: ignore[method-assign]
    service = JourneyService(MemoryJourneyStore(), bus=bus, touched_every_s=5.0)
    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    for offset, kind, url in [
        (0, "pageview", "https://x.example/landing"),
        (2, "event", "https://x.example/landing"),
        (7, "pageview", "https://x.example/pricing"),
    ]:
        at = start + timedelta(seconds=offset)
        touch = StoredTouch(at=at, kind=kind, url=url)
        await service.record("s1", "v1", [touch], None, None, at)
    await service.close()
    await bus.close()
    touched = [e for e in seen if isinstance(e, SessionTouched)]
    assert [(e.kind, e.url) for e in touched] == [
        ("pageview", "https://x.example/landing"),
        ("pageview", "https://x.example/pricing"),
    ]
    assert {e.session_id for e in touched} == {"s1"}
