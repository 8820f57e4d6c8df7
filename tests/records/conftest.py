"""Records fixtures: every suite runs on SQLite (a temp file) and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from records_databases import postgres_database, sqlite_url

from loopline.domain.clock import FakeClock
from loopline.records import SqlRecords


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest_asyncio.fixture
async def records_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the backend under test, not yet migrated."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path)
        return
    async with postgres_database() as url:
        yield url


@pytest_asyncio.fixture
async def records(records_url: str, clock: FakeClock) -> AsyncIterator[SqlRecords]:
    store = SqlRecords(records_url, clock=clock)
    await store.start()
    try:
        yield store
    finally:
        await store.close()
