"""The outbox against a local destination that fails on demand: every conversion delivered
exactly once through 500s, slow answers, a refused batch, a node restart and a destination
restart; dead letters kept and replayed."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from loopline.attribution.exporters import build_exporter
from loopline.attribution.outbox import Outbox, backoff_s
from loopline.attribution.store import AttributionStore
from loopline.config.attribution import Ga4Destination, WebhookDestination
from loopline.domain.clock import SystemClock
from tests.attribution.conftest import seed
from tests.attribution.sink import WEBHOOK_SECRET, Sink
from tests.support import free_port, serve

ENV = {"LOOPLINE_WEBHOOK_SECRET": WEBHOOK_SECRET, "GA4_API_SECRET": "ga4-secret"}


def crm(base: str, **kw: object) -> WebhookDestination:
    settings: dict[str, object] = {
        "kind": "webhook",
        "name": "crm",
        "url": f"{base}/hooks/crm",
        "timeout_s": 0.5,
        "backoff_base_s": 0.05,
        "backoff_max_s": 0.3,
        "batch_size": 10,
        "max_attempts": 20,
    }
    settings.update(kw)
    return WebhookDestination.model_validate(settings)


def outbox(
    store: AttributionStore, dest: WebhookDestination | Ga4Destination, owner: str = "node-a"
) -> Outbox:
    return Outbox(
        store=store,
        exporters={dest.name: build_exporter(dest, ENV)},
        destinations={dest.name: dest},
        clock=SystemClock(),
        owner=owner,
        poll_s=0.05,
        lease_margin_s=5.0,
        rand=random.Random(7),
    )


@asynccontextmanager
async def running(box: Outbox) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(box.run(), name=f"outbox-{box.owner}")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError


async def all_delivered(store: AttributionStore, n: int, within: float = 15.0) -> None:
    for _ in range(int(within / 0.05)):
        if (await store.counts()).get("crm", {}).get("delivered", 0) >= n:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


async def until_sent(box: Outbox, http: httpx.AsyncClient) -> None:
    for _ in range(100):
        if await box.deliver_once("crm", http):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


@pytest.mark.parametrize(
    ("attempts", "base", "cap", "low", "high"),
    [
        (1, 2.0, 3600.0, 1.0, 2.0),
        (2, 2.0, 3600.0, 2.0, 4.0),
        (5, 2.0, 3600.0, 16.0, 32.0),
        (30, 2.0, 3600.0, 1800.0, 3600.0),  # capped
        (0, 0.5, 10.0, 0.25, 0.5),
    ],
)
def test_backoff_grows_exponentially_with_jitter_under_a_cap(
    attempts: int, base: float, cap: float, low: float, high: float
) -> None:
    delays = [backoff_s(attempts, base, cap, random.Random(seed)) for seed in range(50)]
    assert all(low <= d <= high for d in delays)
    assert len({round(d, 6) for d in delays}) > 40  # jittered, not one fixed value


async def test_every_conversion_once_through_failures_and_a_node_restart(
    store: AttributionStore, sink: tuple[Sink, str]
) -> None:
    server, base = sink
    ids = await seed(store, 60, ["crm"], SystemClock().now())
    server.plan = ["500", "ok", "slow", "429", "ok", "500"]
    server.slow_s = 1.0
    dest = crm(base)
    async with running(outbox(store, dest)):
        await until(lambda: sum(server.accepted.values()) >= 20)
        # Every request from now hangs; the node dies while its batch is in flight.
        server.plan = ["slow"] * 1000
        seen = len(server.requests)
        await until(lambda: len(server.requests) > seen)
    server.plan = ["500"]
    counts = await store.counts()
    assert counts["crm"].get("sending", 0) >= 1  # leased to the dead node
    async with running(outbox(store, dest)):  # the same node id, back
        await all_delivered(store, 60)
    assert set(server.accepted) == set(ids)
    assert all(n == 1 for n in server.accepted.values())
    assert not server.duplicates
    assert not server.problems
    assert (await store.counts()) == {"crm": {"delivered": 60}}


async def test_a_destination_restart_loses_nothing(store: AttributionStore) -> None:
    server = Sink()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ids = await seed(store, 40, ["crm"], SystemClock().now())
    box = outbox(store, crm(base, batch_size=5))
    server.plan = ["ok", "ok"] + ["slow"] * 50
    server.slow_s = 0.3
    async with running(box):
        async with serve(server.app(), port):
            await until(lambda: sum(server.accepted.values()) >= 10)
        # The destination is down: connections are refused for a while.
        await asyncio.sleep(0.5)
        server.plan = []
        async with serve(server.app(), port):
            await all_delivered(store, 40)
    assert set(server.accepted) == set(ids)
    # A batch the destination took as it went down, whose answer never came back, goes again
    # under the same keys: the destination's de-duplication counts it once (as the sink did).
    assert sum(server.duplicates.values()) <= 5
    assert box.stats["crm"].failed > 0


async def test_two_nodes_share_the_outbox_and_send_each_conversion_once(
    store: AttributionStore, sink: tuple[Sink, str]
) -> None:
    server, base = sink
    ids = await seed(store, 80, ["crm"], SystemClock().now())
    server.plan = ["500", "ok", "500", "ok"]
    dest = crm(base, batch_size=4)
    async with running(outbox(store, dest, "node-a")), running(outbox(store, dest, "node-b")):
        await all_delivered(store, 80)
    assert set(server.accepted) == set(ids)
    assert not server.duplicates


async def test_a_conversion_that_keeps_failing_is_a_dead_letter_until_replayed(
    store: AttributionStore, sink: tuple[Sink, str]
) -> None:
    server, base = sink
    [cid] = await seed(store, 1, ["crm"], SystemClock().now())
    server.plan = ["500", "500", "500"]
    box = outbox(store, crm(base, max_attempts=3))
    async with httpx.AsyncClient() as http:
        for _ in range(3):  # each try waits out its backoff first
            await until_sent(box, http)
        [dead] = await store.entries(status="dead")
        assert (dead.conversion_id, dead.attempts, dead.last_error) == (cid, 3, "HTTP 500")
        assert await box.deliver_once("crm", http) == 0  # a dead letter is not retried
        assert await store.replay(now=SystemClock().now(), destination="crm") == 1
        assert await box.deliver_once("crm", http) == 1
    assert server.accepted == {cid: 1}
    assert (await store.counts()) == {"crm": {"delivered": 1}}


async def test_a_refused_batch_is_sent_again_one_by_one(
    store: AttributionStore, sink: tuple[Sink, str]
) -> None:
    server, base = sink
    ids = await seed(store, 5, ["crm"], SystemClock().now())
    # The batch is refused; then alone, the second conversion is refused again.
    server.plan = ["400", "ok", "400", "ok", "ok", "ok"]
    box = outbox(store, crm(base, batch_size=5))
    async with httpx.AsyncClient() as http:
        assert await box.deliver_once("crm", http) == 5
        for _ in range(5):
            assert await box.deliver_once("crm", http) == 1
    assert set(server.accepted) == set(ids) - {ids[1]}
    [dead] = await store.entries(status="dead")
    assert dead.conversion_id == ids[1] and dead.last_error == "HTTP 400"


async def test_a_destination_that_cannot_match_a_conversion_skips_it(
    store: AttributionStore, sink: tuple[Sink, str]
) -> None:
    server, base = sink
    await seed(store, 2, ["ga4"], SystemClock().now())  # the visitors left no GA4 client id
    dest = Ga4Destination(kind="ga4", name="ga4", measurement_id="G-TEST1", url=base)
    box = outbox(store, dest)
    async with httpx.AsyncClient() as http:
        assert await box.deliver_once("ga4", http) == 2
    assert not server.requests
    skipped = await store.entries(status="skipped")
    assert {e.last_error for e in skipped} == {"no GA4 client id in the journey"}
