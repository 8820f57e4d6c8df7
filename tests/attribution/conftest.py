"""Attribution fixtures: the attribution store on SQLite and on a real PostgreSQL, a sink."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from loopline.attribution.facts import CallFacts
from loopline.attribution.store import AttributionStore
from loopline.domain.journey import JourneyMatch
from loopline.domain.outcomes import Conversion, Outcome
from loopline.records import migrate
from tests.attribution.sink import Sink
from tests.records.records_databases import postgres_database, sqlite_url
from tests.support import free_port, serve

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest_asyncio.fixture
async def db_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with postgres_database() as url:
        yield url


@pytest_asyncio.fixture
async def store(db_url: str) -> AsyncIterator[AttributionStore]:
    await migrate(db_url)
    s = AttributionStore(db_url)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


@pytest_asyncio.fixture
async def sink() -> AsyncIterator[tuple[Sink, str]]:
    server = Sink()
    port = free_port()
    async with serve(server.app(), port):
        yield server, f"http://127.0.0.1:{port}"


def facts(call_id: str, *, at: datetime = T0, **journey: object) -> CallFacts:
    return CallFacts(
        call_id=call_id,
        received_at=at,
        answered_at=at + timedelta(seconds=5),
        ended_at=at + timedelta(minutes=4),
        duration_s=245,
        agent_id="ana",
        caller_number="+14155550100",
        campaign="spring-sale",
        journey=JourneyMatch(session_id=f"s-{call_id}", **journey) if journey else None,  # type: ignore[arg-type]
    )


def conversion(
    call_id: str, destinations: list[str], *, at: datetime = T0, value: float = 450.0
) -> Conversion:
    return Conversion(
        id=f"cv_{call_id}",
        call_id=call_id,
        name="Phone sale",
        value=value,
        currency="USD",
        occurred_at=at + timedelta(minutes=4),
        call_started_at=at,
        caller_number="+14155550100",
        click_ids={"gclid": f"gclid-{call_id}"},
        outcome="sale",
        destinations=destinations,
    )


def sale(call_id: str, at: datetime = T0) -> Outcome:
    return Outcome(
        call_id=call_id,
        label="sale",
        confidence=1.0,
        source="disposition",
        value=450.0,
        currency="USD",
        at=at + timedelta(minutes=5),
    )


async def seed(
    store: AttributionStore, n: int, destinations: list[str], now: datetime
) -> list[str]:
    ids = []
    for i in range(n):
        call_id = f"call-{i:05d}"
        conv = conversion(call_id, destinations, at=now - timedelta(hours=1))
        await store.record_outcome(
            sale(call_id, now),
            facts(call_id, at=now - timedelta(hours=1)),
            [conv],
            now=now,
            hold_s=0,
            zone="UTC",
        )
        ids.append(conv.id)
    return ids
