"""The state suite runs every test against both implementations: memory and a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from loopline.domain.clock import FakeClock
from loopline.state.base import EventBus, StateStore
from loopline.state.memory import MemoryEventBus, MemoryStateStore
from loopline.state.redis import RedisEventBus, RedisStateStore

PREFIX = "t:"

# Another "node": a second store on the same live state (memory has only one node).
NodeFactory = Callable[[], Awaitable[StateStore]]
BusFactory = Callable[..., EventBus]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for memory, else the URL of a flushed Redis."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_clean")
        return url
    return None


@pytest_asyncio.fixture
async def store(backend: str | None, clock: FakeClock) -> AsyncIterator[StateStore]:
    s: StateStore = (
        MemoryStateStore(clock=clock)
        if backend is None
        else RedisStateStore.from_url(backend, prefix=PREFIX)
    )
    yield s
    await s.close()


@pytest_asyncio.fixture
async def other_node(backend: str | None, store: StateStore) -> AsyncIterator[NodeFactory]:
    """Opens more nodes on the same state: new connections for Redis, the same store in memory."""
    opened: list[StateStore] = []

    async def open_node() -> StateStore:
        if backend is None:
            return store
        node = RedisStateStore.from_url(backend, prefix=PREFIX)
        opened.append(node)
        return node

    yield open_node
    for node in opened:
        await node.close()


@pytest_asyncio.fixture
async def make_bus(backend: str | None) -> AsyncIterator[BusFactory]:
    """Buses on one shared event stream: new Redis "nodes", or the one memory bus (which
    takes no Redis options)."""
    opened: list[EventBus] = []
    memory: list[MemoryEventBus] = []

    def open_bus(**redis_options: Any) -> EventBus:
        if backend is None:
            if not memory:
                memory.append(MemoryEventBus())
                opened.append(memory[0])
            return memory[0]
        bus = RedisEventBus.from_url(backend, prefix=PREFIX, **redis_options)
        opened.append(bus)
        return bus

    yield open_bus
    for bus in opened:
        await bus.close()


@pytest_asyncio.fixture
async def bus(make_bus: BusFactory) -> EventBus:
    return make_bus()
