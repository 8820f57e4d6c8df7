"""The journey store contract, memory and real Redis alike: leases are atomic across nodes."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from loopline.domain.clock import FakeClock
from loopline.journey.store import SESSION_TOUCH_CAP, PoolSpec
from tests.journey.conftest import StoreFactory

NUMBERS = [f"+1500555{i:04d}" for i in range(20)]
SPEC = PoolSpec("web", NUMBERS, idle_hold_s=120, history=4)


async def test_lease_lifecycle(open_store: StoreFactory, clock: FakeClock) -> None:
    store = await open_store()
    await store.ensure_pool(SPEC)
    await store.ensure_pool(SPEC)  # idempotent
    grant = await store.acquire("web", "s1", "v1", clock.now(), "ET")
    assert grant.kind == "granted" and grant.number == NUMBERS[0]
    assert grant.holding is not None and grant.holding.region == "ET"
    clock.advance(60)
    beat = await store.heartbeat("web", "s1", "v1", clock.now())
    assert beat is not None and beat.expires - beat.last_seen == 120
    assert await store.heartbeat("web", "s-other", "v1", clock.now()) is None
    again = await store.acquire("web", "s1", "v1", clock.now())
    assert (again.kind, again.number) == ("renewed", NUMBERS[0])
    use = await store.use("web", clock.now())
    assert (use.in_use, use.free, use.leases, use.renewals) == (1, 19, 1, 1)
    assert use.lease_rate_per_s > 0

    clock.advance(121)  # the hold runs out
    assert (await store.use("web", clock.now())).in_use == 0
    [past] = await store.holdings("web", NUMBERS[0])
    assert (past.session_id, past.visitor_id, past.region) == ("s1", "v1", "ET")
    # Released last, reused last: the never-used numbers go first.
    nxt = await store.acquire("web", "s2", "v2", clock.now())
    assert nxt.number == NUMBERS[1]


async def test_new_session_of_a_holder_keeps_the_number(
    open_store: StoreFactory, clock: FakeClock
) -> None:
    store = await open_store()
    await store.ensure_pool(SPEC)
    await store.acquire("web", "s1", "v1", clock.now())
    clock.advance(30)
    grant = await store.acquire("web", "s2", "v1", clock.now())
    assert grant.kind == "renewed" and grant.number == NUMBERS[0]
    current, past = await store.holdings("web", NUMBERS[0])
    assert (current.session_id, past.session_id) == ("s2", "s1")
    assert past.expires == current.start


async def test_exhausted_pool_falls_back_and_counts(
    open_store: StoreFactory, clock: FakeClock
) -> None:
    store = await open_store()
    await store.ensure_pool(PoolSpec("tiny", NUMBERS[:2], idle_hold_s=120))
    for i in range(2):
        assert (await store.acquire("tiny", f"s{i}", f"v{i}", clock.now())).number
    fallback = await store.acquire("tiny", "s9", "v9", clock.now())
    assert fallback.kind == "fallback" and fallback.number is None
    assert (await store.use("tiny", clock.now())).fallbacks == 1


async def test_spent_number_goes_first(open_store: StoreFactory, clock: FakeClock) -> None:
    store = await open_store()
    await store.ensure_pool(PoolSpec("p", NUMBERS[:3], idle_hold_s=10))
    for i in range(3):
        await store.acquire("p", f"s{i}", f"v{i}", clock.now())
    clock.advance(20)
    await store.use("p", clock.now())  # reclaim
    assert await store.mark_spent("p", NUMBERS[2])
    assert (await store.acquire("p", "x", "vx", clock.now())).number == NUMBERS[2]


@pytest.mark.parametrize(
    ("window", "past", "visitors", "order"),
    [
        # The numbers' last holders (released in order), then new visitors' zones in turn.
        (8, ["ET", "CT", "ET"], ["ET", "CT", "ET"], [1, 0, 2]),
        (1, ["ET", "CT", "ET"], ["ET", "CT", "ET"], [0, 1, 2]),  # plain LRR
        (8, ["ET", "", "CT"], ["ET", "ET", "ET"], [2, 0, 1]),  # an unknown zone tells nothing
    ],
)
async def test_zone_diverse_reuse(
    open_store: StoreFactory,
    clock: FakeClock,
    window: int,
    past: list[str],
    visitors: list[str],
    order: list[int],
) -> None:
    store = await open_store()
    await store.ensure_pool(PoolSpec("z", NUMBERS[:3], idle_hold_s=10, zone_window=window))
    for i, zone in enumerate(past):
        assert (await store.acquire("z", f"s{i}", f"v{i}", clock.now(), zone)).number == NUMBERS[i]
        clock.advance(1)
    clock.advance(20)
    got = [
        (await store.acquire("z", f"t{i}", f"w{i}", clock.now(), zone)).number
        for i, zone in enumerate(visitors)
    ]
    assert got == [NUMBERS[i] for i in order]
    [current, before] = await store.holdings("z", NUMBERS[order[0]])
    assert (current.session_id, current.region) == ("t0", visitors[0])
    assert (before.session_id, before.region) == (f"s{order[0]}", past[order[0]])


async def test_zone_diverse_reuse_still_takes_a_spent_number_first(
    open_store: StoreFactory, clock: FakeClock
) -> None:
    store = await open_store()
    await store.ensure_pool(PoolSpec("z", NUMBERS[:3], idle_hold_s=10, zone_window=8))
    for i, zone in enumerate(["ET", "CT", "ET"]):
        await store.acquire("z", f"s{i}", f"v{i}", clock.now(), zone)
        clock.advance(1)
    clock.advance(20)
    await store.use("z", clock.now())  # reclaim
    assert await store.mark_spent("z", NUMBERS[2])
    assert (await store.acquire("z", "t", "w", clock.now(), "ET")).number == NUMBERS[2]


async def test_concurrent_acquires_from_many_nodes_never_share_a_number(
    open_store: StoreFactory, clock: FakeClock
) -> None:
    nodes = [await open_store() for _ in range(4)]
    await nodes[0].ensure_pool(SPEC)
    for node in nodes[1:]:
        await node.ensure_pool(SPEC)
    now = clock.now()
    # 40 visitors (each asking twice, from different nodes) race for 20 numbers.
    grants = await asyncio.gather(
        *(
            nodes[(i + k) % 4].acquire("web", f"s{i}", f"v{i}", now)
            for i in range(40)
            for k in (0, 1)
        )
    )
    by_visitor: dict[str, set[str]] = {}
    for i, grant in enumerate(grants):
        if grant.number:
            by_visitor.setdefault(f"v{i // 2}", set()).add(grant.number)
    assert all(len(numbers) == 1 for numbers in by_visitor.values())
    held = [next(iter(n)) for n in by_visitor.values()]
    assert len(held) == len(set(held)) == 20
    use = await nodes[0].use("web", now)
    assert (use.in_use, use.leases, use.renewals, use.fallbacks) == (20, 20, 20, 40)


async def test_touches_are_capped_and_known_callers_kept(
    open_store: StoreFactory, clock: FakeClock
) -> None:
    store = await open_store()
    batch = [json.dumps({"i": i}) for i in range(SESSION_TOUCH_CAP + 5)]
    await store.append_touches("s1", batch[:10])
    await store.append_touches("s1", batch[10:])
    kept = await store.touches("s1")
    assert len(kept) == SESSION_TOUCH_CAP and json.loads(kept[-1]) == {"i": SESSION_TOUCH_CAP + 4}
    assert await store.touches("nobody") == []
    await store.add_known_caller("s1", "h1")
    assert await store.known_callers("s1") == {"h1"}
    _ = timedelta  # times are the clock's; nothing here expires within a test
