"""The journey store suite runs against both implementations: memory and a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from loopline.journey.redis_store import RedisJourneyStore
from loopline.journey.store import JourneyStore, MemoryJourneyStore

PREFIX = "tj:"
StoreFactory = Callable[[], Awaitable[JourneyStore]]


@pytest.fixture(params=["memory", "redis"])
def journey_backend(request: pytest.FixtureRequest) -> str | None:
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_clean")
        return url
    return None


@pytest_asyncio.fixture
async def open_store(journey_backend: str | None) -> AsyncIterator[StoreFactory]:
    """Opens "nodes" on one journey state: new Redis connections, or the one memory store."""
    opened: list[JourneyStore] = []
    memory = MemoryJourneyStore()

    async def open_node() -> JourneyStore:
        if journey_backend is None:
            return memory
        store = RedisJourneyStore.from_url(journey_backend, prefix=PREFIX)
        opened.append(store)
        return store

    yield open_node
    for store in opened:
        await store.close()
