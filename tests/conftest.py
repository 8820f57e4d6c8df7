"""Shared fixtures: a real Redis, the leaked-task check, the injected clock."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from loopline.domain.clock import FakeClock


def _redis_url() -> str | None:
    return os.environ.get("LOOPLINE_TEST_REDIS_URL")


@pytest.fixture
def redis_url() -> str:
    """The URL of a real Redis (make test starts one). Under CI=true a missing Redis fails."""
    url = _redis_url()
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("LOOPLINE_TEST_REDIS_URL is not set and CI=true: Redis tests must run")
        pytest.skip("no Redis: set LOOPLINE_TEST_REDIS_URL or install redis-server")
    return url


@pytest_asyncio.fixture
async def redis_clean(redis_url: str) -> AsyncIterator[str]:
    """A real Redis, flushed before and after the test."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    await client.flushdb()
    try:
        yield redis_url
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail any async test that leaves tasks running on its loop."""
    before = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()
    # Give cancelled tasks one turn to finish unwinding.
    await asyncio.sleep(0)
    leaked = [
        t for t in asyncio.all_tasks() if t is not current and t not in before and not t.done()
    ]
    if leaked:
        for t in leaked:
            t.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        names = ", ".join(sorted(t.get_name() + ":" + repr(t.get_coro()) for t in leaked))
        pytest.fail(f"test left {len(leaked)} task(s) running: {names}")


@pytest.fixture
def anyio_backend() -> Iterator[str]:
    yield "asyncio"
